# The NixOps4 Nix library: helpers for writing deployments. Exposed as `lib` by the
# repository's flake (and by nix/flake.nix, for flakes that want only the library).
# The contract they build on is described in docs/deployments.md.
let
  inherit (builtins) elemAt genList isFunction length listToAttrs removeAttrs;

  # A nested deployment: `f` is a deployment function whose `resources` argument holds
  # its siblings; the enclosing deployment's resources stay reachable through the outer
  # function's argument. Its resources get paths `<name>.<resource>`.
  nested = f: {
    _type = "nixops4NestedDeployment";
    deployment = f;
  };

  # The options of a module-system deployment (see `moduleDeployment`).
  deploymentModule = { lib, ... }:
    let
      lazyAttrs = description: lib.mkOption {
        type = lib.types.lazyAttrsOf (lib.types.raw or lib.types.unspecified);
        default = { };
        inherit description;
      };
    in
    {
      options = {
        resources = lazyAttrs "The deployment's resources: `{ type; inputs; state; dependsOn; }` or nested deployments.";
        providers = lazyAttrs "Providers other than the built-in `local`: `{ executable; args; }`.";
        outputs = lazyAttrs "Values computed from resource outputs, for scripts and `nixops4 output`.";
      };
    };

  # The NixOS system a `nixos` resource deploys: `system` as given, or evaluated from
  # `nixpkgs` (a flake input or a source tree) with `modules`.
  nixosSystem = { system, nixpkgs, modules }:
    if system != null then system
    else if nixpkgs == null then throw "nixops4.lib.nixos: give `system` (a built NixOS system) or `nixpkgs` with `modules`"
    else if nixpkgs ? lib.nixosSystem then (nixpkgs.lib.nixosSystem { inherit modules; }).config.system.build.toplevel
    else (import "${nixpkgs}/nixos/lib/eval-config.nix" { system = null; inherit modules; }).config.system.build.toplevel;
in
{
  inherit nested;

  # A NixOS machine deployed over SSH: a resource of type `ssh.nixos` (declare the
  # provider as `providers.ssh`; docs/machines.md). Give the system to deploy, or a
  # nixpkgs and the machine's modules, from which the system is evaluated:
  #
  #   resources.web = nixops4.lib.nixos {
  #     ssh = { host = "web.example"; privateKey = resources.sshkeypair.privateKey;
  #             hostPublicKey = "ssh-ed25519 AAAA..."; };
  #     nixpkgs = inputs.nixpkgs;
  #     module = ./configuration.nix;
  #   };
  #
  # Other attributes (`action`, `sudo`, `keys`, `confirmTimeout`, ...) are the resource's
  # inputs, as are `state` and `dependsOn` its own.
  nixos = { ssh, system ? null, nixpkgs ? null, module ? null, modules ? [ ], state ? null, dependsOn ? [ ], ... }@args:
    let
      inputs = removeAttrs args [ "system" "nixpkgs" "module" "modules" "state" "dependsOn" ];
      toplevel = nixosSystem {
        inherit system nixpkgs;
        modules = modules ++ (if module == null then [ ] else [ module ]);
      };
    in
    {
      type = "ssh.nixos";
      inputs = inputs // { system = "${toplevel}"; };
      inherit dependsOn;
    } // (if state == null then { } else { inherit state; });

  # A deployment written as NixOS-style modules (imports, options, mkIf, ...), evaluated
  # with the nixpkgs `lib` you pass. Modules set `resources`, `providers` and `outputs`;
  # the `resources` module argument holds the resources' outputs, as in a plain
  # deployment:
  #
  #   nixops4Deployments.default = nixops4.lib.moduleDeployment {
  #     lib = nixpkgs.lib;
  #     modules = [ ./deployment.nix ];
  #   };
  #
  # Beside the configuration, the result carries `_nixops4Options` (the evaluated
  # `options` and the `lib` that made them), from which the evaluator lists the options
  # for the language server's completion and hover.
  moduleDeployment = { lib, modules, specialArgs ? { } }: args:
    let
      evaluated = lib.evalModules {
        modules = [ deploymentModule ] ++ modules;
        specialArgs = specialArgs // { inherit (args) resources; };
      };
    in
    evaluated.config // { _nixops4Options = { inherit lib; inherit (evaluated) options; }; };

  # A nested deployment whose resources are applied one after the other, in list order:
  # each step depends on the one before it, on top of what its inputs refer to.
  # `steps` is a list of resource declarations with a `name`, or a function from the
  # nested `{ resources, ... }` argument to such a list.
  #
  #   resources.release = lib.mkSequence ({ resources, ... }: [
  #     { name = "build"; type = "local.exec"; inputs.executable = "make"; }
  #     { name = "publish"; type = "local.exec"; inputs = { executable = "rsync"; args = [ "out/" "host:" ]; }; }
  #   ]);
  mkSequence = steps: nested (args:
    let
      list = if isFunction steps then steps args else steps;
      step = i:
        let
          declaration = elemAt list i;
          previous = (elemAt list (i - 1)).name;
        in
        {
          name = declaration.name;
          value = removeAttrs declaration [ "name" ]
            // (if i == 0 then { } else { dependsOn = (declaration.dependsOn or [ ]) ++ [ args.resources.${previous} ]; });
        };
    in
    { resources = listToAttrs (genList step (length list)); });
}
