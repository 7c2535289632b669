//! The scheduling decisions, on deployments written as data and a made-up evaluator and
//! providers: each test shows what was evaluated and started, in order, and the report.
//!
//! A deployment is one resource a line: `name work [needs a,b] [after a,b] [fails how]`,
//! where `work` is `keep`, `create`, `update` or `replace` (what the record asks for),
//! `needs` are the resources whose outputs its inputs use, `after` its `dependsOn`, and
//! `fails` is `evaluation` or `call`, and `builds` the derivations it needs built (one
//! named `bad…` fails to build). A batch is evaluated as the evaluator does: every item
//! before any of their outputs are provided. Calls and builds end in the order they
//! started, one a round. Recorded resources to delete are written
//! `name delete [depends a,b] [fails call]`, and those to forget instead `name forget ...`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::settle::list;
use super::*;

mod builds;

fn p(name: &str) -> ResourcePath {
    ResourcePath::parse_dotted(name)
}

fn paths(list: &str) -> Vec<ResourcePath> {
    list.split(',').filter(|s| !s.is_empty()).map(p).collect()
}

#[derive(Default)]
struct Line {
    work: String,
    needs: Vec<ResourcePath>,
    after: Vec<ResourcePath>,
    fails: Option<String>,
    builds: Vec<String>,
}

/// A recorded resource that is no longer declared.
fn is_removal(line: &Line) -> bool {
    matches!(line.work.as_str(), "delete" | "forget")
}

fn parse(deployment: &str) -> BTreeMap<ResourcePath, Line> {
    let mut lines = BTreeMap::new();
    for text in deployment.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = text.split_whitespace();
        let name = p(words.next().unwrap());
        let mut line = Line {
            work: words.next().unwrap().to_owned(),
            ..Line::default()
        };
        while let Some(keyword) = words.next() {
            let value = words.next().unwrap();
            match keyword {
                "needs" => line.needs = paths(value),
                "after" | "depends" => line.after = paths(value),
                "fails" => line.fails = Some(value.to_owned()),
                "builds" => line.builds = value.split(',').map(str::to_owned).collect(),
                other => panic!("unknown keyword {other}"),
            }
        }
        lines.insert(name, line);
    }
    lines
}

/// Something started and not finished yet.
enum Running {
    Call(Call),
    Build(Vec<Derivation>),
}

/// A derivation `/nix/store/<hash>-<name>.drv` with one output.
fn derivation(name: &str) -> Derivation {
    Derivation {
        path: format!("/nix/store/{}-{name}.drv", "0".repeat(32)),
        outputs: [(
            "out".to_owned(),
            format!("/nix/store/{}-{name}", "1".repeat(32)),
        )]
        .into(),
    }
}

fn names(derivations: &[Derivation]) -> String {
    let names: Vec<&str> = derivations.iter().map(Derivation::name).collect();
    names.join(" ")
}

/// Plays the driver: evaluates from the table, and finishes the oldest running call or
/// build each round.
struct Driver {
    schedule: Schedule,
    deployment: BTreeMap<ResourcePath, Line>,
    provided: BTreeSet<ResourcePath>,
    running: VecDeque<Running>,
    most_running: usize,
    /// Interrupt once this many calls have started.
    interrupt_after: Option<usize>,
    started: usize,
    trace: Vec<String>,
}

impl Driver {
    fn new(deployment: &str, parallelism: usize) -> Driver {
        let deployment = parse(deployment);
        let mut schedule = Schedule::new(parallelism);
        schedule.apply(
            deployment
                .iter()
                .filter(|(_, l)| !is_removal(l))
                .map(|(path, _)| path.clone()),
        );
        schedule.delete(
            deployment
                .iter()
                .filter(|(_, l)| is_removal(l))
                .map(|(path, l)| (path.clone(), l.after.clone())),
            |path| deployment[path].work == "forget",
        );
        Driver {
            schedule,
            deployment,
            provided: BTreeSet::new(),
            running: VecDeque::new(),
            most_running: 0,
            interrupt_after: None,
            started: 0,
            trace: Vec::new(),
        }
    }

    fn evaluate(&mut self, path: &ResourcePath) -> Evaluated {
        let Some(line) = self.deployment.get(path) else {
            return Evaluated::Failed(format!("{path} is not declared"));
        };
        if line.fails.as_deref() == Some("evaluation") {
            return Evaluated::Failed(format!("could not evaluate {path}"));
        }
        let missing: Vec<ResourcePath> = line
            .needs
            .iter()
            .filter(|n| !self.provided.contains(*n))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Evaluated::Waiting(missing);
        }
        let work = match line.work.as_str() {
            "keep" => Work::Keep,
            "create" => Work::Create,
            "update" => Work::Update,
            "replace" => Work::Replace,
            "recreate" => Work::Recreate,
            other => panic!("unknown work {other}"),
        };
        // As the driver does: a resource kept as it is needs nothing built.
        let needs = match work {
            Work::Keep => Vec::new(),
            _ => line.builds.iter().map(|name| derivation(name)).collect(),
        };
        Evaluated::Ready {
            work,
            after: line.after.clone(),
            needs,
        }
    }

    /// Runs until nothing more can happen; the trace, one event a line.
    fn run(&mut self) {
        loop {
            let batch = self.schedule.evaluate_now();
            if !batch.is_empty() {
                self.trace
                    .push(format!("evaluate {}", list(&batch).replace(", ", " ")));
                // As the evaluator answers a batch: every item before any outputs of
                // theirs are provided.
                let evaluations: Vec<(ResourcePath, Evaluated)> = batch
                    .into_iter()
                    .map(|path| {
                        let evaluated = self.evaluate(&path);
                        (path, evaluated)
                    })
                    .collect();
                for (path, evaluated) in evaluations {
                    match &evaluated {
                        Evaluated::Waiting(needs) => self
                            .trace
                            .push(format!("  {path} waits for {}", list(needs))),
                        Evaluated::Ready {
                            work: Work::Keep, ..
                        } => {
                            self.provided.insert(path.clone());
                        }
                        _ => {}
                    }
                    self.schedule.evaluated(&path, evaluated);
                }
                continue;
            }
            let build = self.schedule.build_now();
            if !build.is_empty() {
                self.trace.push(format!("build {}", names(&build)));
                self.running.push_back(Running::Build(build));
            }
            for call in self.schedule.start() {
                let step = match call.step {
                    Step::Create(_) => "create",
                    Step::Update(_) => "update",
                    Step::Delete(_) => "delete",
                    Step::Read => "read",
                };
                self.trace.push(format!("start {step} {}", call.path));
                self.running.push_back(Running::Call(call));
                self.started += 1;
                if self.interrupt_after == Some(self.started) {
                    self.trace.push("interrupt".into());
                    self.schedule.interrupt();
                }
            }
            let calls = self
                .running
                .iter()
                .filter(|r| matches!(r, Running::Call(_)));
            self.most_running = self.most_running.max(calls.count());
            let call = match self.running.pop_front() {
                None => break,
                Some(Running::Build(derivations)) => {
                    for derivation in derivations {
                        let name = derivation.name();
                        let result = match name.starts_with("bad") {
                            true => Err("builder failed".to_owned()),
                            false => Ok(()),
                        };
                        self.trace.push(match result {
                            Ok(()) => format!("built {name}"),
                            Err(_) => format!("failed to build {name}"),
                        });
                        for (path, error) in self.schedule.built(&derivation.path, result) {
                            self.trace.push(format!("  {path} failed: {error}"));
                        }
                    }
                    continue;
                }
                Some(Running::Call(call)) => call,
            };
            let fails = self.deployment[&call.path].fails.as_deref() == Some("call");
            let result = if fails {
                Err(format!("could not apply {}", call.path))
            } else {
                Ok(())
            };
            match self.schedule.finished(&call.path, result) {
                Some(work) => {
                    if matches!(work, Work::Create | Work::Update | Work::Replace) {
                        self.provided.insert(call.path.clone());
                    }
                    self.trace.push(format!("done {}", call.path));
                }
                None if fails => self.trace.push(format!("failed {}", call.path)),
                None => self
                    .trace
                    .push(format!("done the first step of {}", call.path)),
            }
        }
    }

    /// Runs, ends the run, and shows the trace and the report.
    fn apply(mut self) -> String {
        self.run();
        self.schedule.conclude();
        self.rendered()
    }

    fn rendered(&self) -> String {
        let report = self.schedule.report();
        let mut out = self.trace.join("\n");
        let applied: Vec<String> = report
            .applied
            .iter()
            .map(|(path, action)| format!("{path} {action:?}"))
            .collect();
        out.push_str(&format!(
            "\napplied: {}; unchanged: {}",
            applied.join(", "),
            report.unchanged
        ));
        for (path, error) in &report.failed {
            out.push_str(&format!("\nfailed {path}: {error}"));
        }
        for (path, reason) in &report.skipped {
            out.push_str(&format!("\nskipped {path}: {reason}"));
        }
        if report.interrupted {
            out.push_str("\ninterrupted");
        }
        out
    }

    /// A preview: where each resource stands, as a plan shows it.
    fn preview(mut self) -> String {
        self.run();
        self.settled()
    }

    fn settled(&self) -> String {
        let mut out = self.trace.join("\n");
        for (path, _, settled) in self.schedule.settled() {
            let shown = match settled {
                Settled::Done(work) => format!("done {work:?}"),
                Settled::Planned(work) => format!("planned {work:?}"),
                Settled::Waiting(needs) => format!("waits for {}", list(&needs)),
                Settled::Failed(error) => format!("failed: {error}"),
                Settled::Skipped(reason) => format!("skipped: {reason}"),
                Settled::Cycle(members) => format!("in the cycle {}", render_cycle(&members)),
                Settled::Blocked(culprit) => format!("blocked by {culprit}"),
                Settled::NotEvaluated => "not evaluated".to_owned(),
            };
            out.push_str(&format!("\n{path}: {shown}"));
        }
        out
    }
}

fn apply(deployment: &str, parallelism: usize) -> String {
    let mut driver = Driver::new(deployment, parallelism);
    driver.schedule.grant(Mutation::for_tests(), &[]);
    driver.apply()
}

#[test]
fn resources_apply_after_what_they_need() {
    insta::assert_snapshot!(apply("
        a create
        b create needs a
        c update needs b
        top keep
        left create needs top
        right create needs top
        bottom create needs left,right
    ", 1), @"
    evaluate a b bottom c left right top
      b waits for a
      bottom waits for left, right
      c waits for b
      left waits for top
      right waits for top
    evaluate left right
    start create a
    done a
    evaluate b
    start create left
    done left
    evaluate bottom
      bottom waits for right
    start create right
    done right
    evaluate bottom
    start create b
    done b
    evaluate c
    start create bottom
    done bottom
    start update c
    done c
    applied: a Create, b Create, bottom Create, c Update, left Create, right Create; unchanged: 1
    ");
}

#[test]
fn a_failure_stops_only_what_depends_on_it() {
    insta::assert_snapshot!(apply("
        broken create fails evaluation
        fails create fails call
        needsFails create needs fails
        needsBroken create needs broken
        chained create needs needsFails
        fine create
    ", 2), @"
    evaluate broken chained fails fine needsBroken needsFails
      chained waits for needsFails
      needsBroken waits for broken
      needsFails waits for fails
    start create fails
    start create fine
    failed fails
    done fine
    applied: fine Create; unchanged: 0
    failed broken: could not evaluate broken
    failed fails: could not apply fails
    skipped chained: needs the outputs of needsFails
    skipped needsBroken: needs the outputs of broken
    skipped needsFails: needs the outputs of fails
    ");
}

#[test]
fn no_more_calls_run_at_once_than_the_parallelism_allows() {
    let deployment =
        "a create\nb create\nc create\nd create needs a\ne create\nf update\ng replace";
    for parallelism in 1..=4 {
        let mut driver = Driver::new(deployment, parallelism);
        driver.schedule.grant(Mutation::for_tests(), &[]);
        driver.run();
        assert!(
            driver.most_running <= parallelism,
            "{} calls ran at once with parallelism {parallelism}",
            driver.most_running
        );
        assert_eq!(driver.schedule.report().applied.len(), 7);
    }
    let mut driver = Driver::new(deployment, 3);
    driver.schedule.grant(Mutation::for_tests(), &[]);
    driver.run();
    assert_eq!(driver.most_running, 3, "the parallelism is used");
}

#[test]
fn an_interrupt_starts_nothing_new_and_skips_what_did_not_start() {
    let mut driver = Driver::new(
        "
        a create
        b create
        c create
        d create needs a
    ",
        2,
    );
    driver.interrupt_after = Some(2);
    driver.schedule.grant(Mutation::for_tests(), &[]);
    insta::assert_snapshot!(driver.apply(), @"
    evaluate a b c d
      d waits for a
    start create a
    start create b
    interrupt
    done a
    done b
    applied: a Create, b Create; unchanged: 0
    skipped c: not started: interrupted
    skipped d: not started: interrupted
    interrupted
    ");
}

#[test]
fn cycles_are_found_with_their_members_in_order() {
    let deployment = "
        a create needs b
        b create needs c
        c create needs a
        waitsOnCycle create needs a
        free create
        self create after self
    ";
    insta::assert_snapshot!(Driver::new(deployment, 1).preview(), @"
    evaluate a b c free self waitsOnCycle
      a waits for b
      b waits for c
      c waits for a
      waitsOnCycle waits for a
    a: in the cycle a → b → c → a
    b: in the cycle a → b → c → a
    c: in the cycle a → b → c → a
    free: planned Create
    self: in the cycle self → self
    waitsOnCycle: blocked by a
    ");
    insta::assert_snapshot!(apply(deployment, 1), @"
    evaluate a b c free self waitsOnCycle
      a waits for b
      b waits for c
      c waits for a
      waitsOnCycle waits for a
    start create free
    done free
    applied: free Create; unchanged: 0
    failed a: dependency cycle: a → b → c → a
    failed b: dependency cycle: a → b → c → a
    failed c: dependency cycle: a → b → c → a
    failed self: dependency cycle: self → self
    skipped waitsOnCycle: needs the outputs of a
    ");
}

#[test]
fn a_replacement_deletes_then_creates_and_its_dependents_wait_for_the_create() {
    insta::assert_snapshot!(apply("
        old replace
        user create needs old
        other create
    ", 1), @"
    evaluate old other user
      user waits for old
    start delete old
    done the first step of old
    start create other
    done other
    start create old
    done old
    evaluate user
    start create user
    done user
    applied: old Replace, other Create, user Create; unchanged: 0
    ");
}

#[test]
fn deletes_go_dependents_first_and_keep_what_a_failed_delete_depends_on() {
    insta::assert_snapshot!(apply("
        top delete
        left delete depends top
        right delete depends top
        bottom delete depends left,right
        tail delete depends bottom
    ", 1), @"
    start delete tail
    done tail
    start delete bottom
    done bottom
    start delete left
    done left
    start delete right
    done right
    start delete top
    done top
    applied: bottom Delete, left Delete, right Delete, tail Delete, top Delete; unchanged: 0
    ");
    insta::assert_snapshot!(apply("
        base delete
        middle delete depends base
        top delete depends middle fails call
        unrelated delete
    ", 1), @"
    start delete top
    failed top
    start delete unrelated
    done unrelated
    applied: unrelated Delete; unchanged: 0
    failed top: could not apply top
    skipped base: not deleted: middle, which depends on it, is not deleted
    skipped middle: not deleted: top, which depends on it, is not deleted
    ");
}

#[test]
fn a_forget_takes_the_place_of_a_delete_and_a_recreate_is_one_create() {
    insta::assert_snapshot!(apply("
        top delete
        middle forget depends top
        bottom delete depends middle
        changed recreate
    ", 1), @"
    evaluate changed
    start create changed
    done changed
    start delete bottom
    done bottom
    start delete middle
    done middle
    start delete top
    done top
    applied: bottom Delete, changed Recreate, middle Forget, top Delete; unchanged: 0
    ");
}

#[test]
fn deletes_wait_for_every_apply_and_not_for_a_failed_one() {
    insta::assert_snapshot!(apply("
        gone delete
        kept create
        updated update needs kept
    ", 4), @"
    evaluate kept updated
      updated waits for kept
    start create kept
    done kept
    evaluate updated
    start update updated
    done updated
    start delete gone
    done gone
    applied: gone Delete, kept Create, updated Update; unchanged: 0
    ");
    insta::assert_snapshot!(apply("
        gone delete
        broken create fails call
    ", 4), @"
    evaluate broken
    start create broken
    failed broken
    applied: ; unchanged: 0
    failed broken: could not apply broken
    skipped gone: not deleted: not every declared resource was applied
    ");
}

#[test]
fn targets_pull_in_only_what_they_need() {
    let deployment = "
        a create
        b create needs a
        c create
        d update after c
        e create needs d
        unrelated create
        gone delete
    ";
    let mut driver = Driver::new(deployment, 1);
    driver.run();
    driver.trace.push("grant b, e".into());
    driver.schedule.grant(Mutation::for_tests(), &paths("b,e"));
    insta::assert_snapshot!(driver.apply(), @"
    evaluate a b c d e unrelated
      b waits for a
      e waits for d
    grant b, e
    start create a
    done a
    evaluate b
    start create c
    done c
    start create b
    done b
    start update d
    done d
    evaluate e
    start create e
    done e
    applied: a Create, b Create, c Create, d Update, e Create; unchanged: 0
    ");
}

#[test]
fn a_preview_starts_no_change_and_evaluates_what_needs_unchanged_outputs() {
    insta::assert_snapshot!(Driver::new("
        a update
        b create needs a
        config update needs kept
        kept keep
        later update needs kept
        gone delete depends kept
    ", 4).preview(), @"
    evaluate a b config kept later
      b waits for a
      config waits for kept
      later waits for kept
    evaluate config later
    a: planned Update
    b: waits for a
    config: planned Update
    gone: planned Delete
    kept: done Keep
    later: planned Update
    ");
}

#[test]
fn reads_need_no_capability() {
    let mut schedule = Schedule::new(2);
    schedule.read(paths("a,b,c"));
    let calls: Vec<String> = schedule
        .start()
        .iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(calls, ["a", "b"]);
}
