//! The scheduling decisions about derivations to build: once per run, in one build per
//! round, beside the calls; a failure stays with what needs it; a preview builds nothing.

use super::*;

#[test]
fn each_derivation_is_built_once_in_one_build_per_round_while_calls_go_on() {
    insta::assert_snapshot!(apply("
        a create builds tool
        b create builds tool,data
        c create needs a builds data,late
        free create
        kept keep builds tool
    ", 4), @"
    evaluate a b c free kept
      c waits for a
    build data tool
    start create free
    built data
    built tool
    start create a
    start create b
    done free
    done a
    evaluate c
    build late
    done b
    built late
    start create c
    done c
    applied: a Create, b Create, c Create, free Create; unchanged: 1
    ");
}

#[test]
fn a_failed_build_fails_what_needs_it_and_what_waits_on_that_only() {
    insta::assert_snapshot!(apply("
        a create builds bad
        b create needs a
        c create builds bad,good
        d create builds good
        e create
    ", 4), @"
    evaluate a b c d e
      b waits for a
    build bad good
    start create e
    failed to build bad
      a failed: could not build bad: builder failed
      c failed: could not build bad: builder failed
    built good
    start create d
    done e
    done d
    applied: d Create, e Create; unchanged: 0
    failed a: could not build bad: builder failed
    failed c: could not build bad: builder failed
    skipped b: needs the outputs of a
    ");
}

#[test]
fn a_preview_builds_nothing_and_says_what_an_apply_would_build() {
    let mut driver = Driver::new(
        "
        a create builds tool
        b update builds tool,data
        c create needs a builds late
        kept keep builds data
    ",
        4,
    );
    driver.run();
    let mut shown = driver.settled();
    for (derivation, resources) in driver.schedule.planned_builds() {
        shown.push_str(&format!(
            "\nwould build {} for {}",
            derivation.name(),
            list(&resources.into_iter().cloned().collect::<Vec<_>>())
        ));
    }
    insta::assert_snapshot!(shown, @"
    evaluate a b c kept
      c waits for a
    a: planned Create
    b: planned Update
    c: waits for a
    kept: done Keep
    would build data for b
    would build tool for a, b
    ");
}
