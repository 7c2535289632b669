# The Nix side of nixops4-eval, loaded once into a `nix repl` session.
#
# It applies a deployment function with a `resources` argument whose values read each
# resource's outputs from `<outputs dir>/<path>.json`. Forcing an output that is not
# there yet fails with "opening file '.../outputs/<path>.json'", which tells the
# evaluator what the resource waits for; once the engine has written the file, forcing
# the same value again succeeds (on Nix versions that do not memoise failures; on others
# the evaluator asks for a fresh `instance`).
#
# Every entry point returns a JSON string, so the evaluator parses one kind of answer.
let
  inherit (builtins)
    attrNames concatMap concatStringsSep elem filter fromJSON hasAttr head isAttrs isFunction
    isList isString length listToAttrs mapAttrs readFile replaceStrings split tail toJSON typeOf
    unsafeGetAttrPos;

  escape = replaceStrings [ "%" "." "/" ] [ "%25" "%2E" "%2F" ];
  show = concatStringsSep ".";

  # A user error the evaluator reports as such, with the position it concerns.
  fail = message: position: throw "nixops4-error:${toJSON { inherit message position; }}";

  isNested = value: isAttrs value && (value._type or null) == "nixops4NestedDeployment";

  describeValue = value:
    let type = typeOf value; in
    if type == "int" then "an integer"
    else if type == "set" then "an attribute set"
    else if type == "list" then "a list"
    else if type == "lambda" then "a function"
    else if type == "null" then "null"
    else "a ${type}";

  # Applies the deployment function `fn` found at `prefix`. `view path` is what
  # `resources.<name>` means for the resource at `path`: its outputs, or a reference.
  instantiate = view: name: prefix: position: fn:
    let
      where = if prefix == [ ] then "deployment `${name}`" else "nested deployment ${show prefix}";
      checkedFn =
        if isFunction fn then fn
        else fail "${where} is not a deployment: expected a function `{ resources, ... }: { resources = { ... }; }`, got ${describeValue fn}" position;
      declared =
        let result = checkedFn { resources = siblings; }; in
        if isAttrs result then result
        else fail "${where} must return an attribute set with `resources`, got ${describeValue result}" position;
      decls =
        let resources = declared.resources or { }; in
        if isAttrs resources then resources
        else fail "`resources` of ${where} must be an attribute set, got ${describeValue resources}" position;
      nested = mapAttrs
        (name: decl:
          if isNested decl
          then instantiate view name (prefix ++ [ name ]) (unsafeGetAttrPos name decls) decl.deployment
          else null)
        decls;
      siblings = mapAttrs (name: decl: if nested.${name} != null then nested.${name}.siblings else view (prefix ++ [ name ])) decls;
    in
    { inherit prefix where declared decls nested siblings; };

  # Each deployment, applied twice: once with outputs (for inputs) and once with
  # references (for `state` and `dependsOn`, which name resources without needing their
  # outputs).
    # A missing file is a `throw` (which `tryEval` catches, so a batch goes on) naming the
  # file, as Nix's own "opening file" error would.
  outputsView = outputsDir: path:
    let file = "${outputsDir}/${concatStringsSep "." (map escape path)}.json"; in
    if builtins.pathExists file then fromJSON (readFile file) else throw "nixops4-waiting: ${file}";
  referenceView = path: { __nixops4Reference = path; };

  lookupLevel = instance: path:
    if path == [ ] then instance
    else
      let next = instance.nested.${head path} or null; in
      if next == null then fail "no nested deployment ${show (instance.prefix ++ [ (head path) ])}" null
      else lookupLevel next (tail path);

  lastOf = list: builtins.elemAt list (length list - 1);
  parentOf = path: builtins.genList (builtins.elemAt path) (length path - 1);

  # The derivation outputs a value refers to, from the string context of its JSON (which
  # keeps the context of every string in it), each with its store path read from the
  # `.drv`: [ { path = "<drv>"; outputs = { out = "<store path>"; }; } ]. Sources (`path`)
  # and whole `.drv` files (`allOutputs`) are in the store once evaluated: not listed.
  derivationsOf = value:
    let context = builtins.getContext (toJSON value); in
    concatMap
      (drv:
        let
          outputs = context.${drv}.outputs or [ ];
          imported = import drv;
        in
        if outputs == [ ] then [ ]
        else [{
          path = drv;
          outputs = listToAttrs (map
            (output: { name = output; value = builtins.unsafeDiscardStringContext imported.${output}.outPath; })
            outputs);
        }])
      (attrNames context);

  referencePath = what: path: value:
    if isAttrs value && value ? __nixops4Reference then value.__nixops4Reference
    else fail "`${what}` of resource ${show path} must be a resource (`resources.<name>`), got ${describeValue value}" null;

  # Providers declared at this level or any enclosing one.
  providerAt = instances: path: name:
    let
      levels = builtins.genList (n: builtins.genList (builtins.elemAt path) n) (length path);
      found = filter (p: p != null) (map (level: (lookupLevel instances.outputs level).declared.providers.${name} or null) levels);
    in
    if found == [ ] then null else lastOf found;

  makeInstances = source: name: outputsDir: fn: {
    inherit source;
    outputs = instantiate (outputsView outputsDir) name [ ] null fn;
    references = instantiate referenceView name [ ] null fn;
  };

  # Whether a position lies in a file of the flake (whose store copy is `source`).
  inSource = source: position:
    position != null
    && builtins.substring 0 (builtins.stringLength source + 1) position.file == "${source}/";

  # Where resource `name` of `decls` is declared: where its name is written, when that is
  # in the flake; else, as for a resource a function generates (`lib.mapAttrs'`) or one
  # the module system merged (whose names stand in nixpkgs' lib, or nowhere), where its
  # own set says its `type`, when that is in the flake; else nowhere (null): a position
  # in another input, such as nixpkgs' lib, tells the user nothing.
  resourcePosition = source: name: decls:
    let
      named = unsafeGetAttrPos name decls;
      decl = decls.${name} or null;
      typed = if isAttrs decl then unsafeGetAttrPos "type" decl else null;
    in
    if inSource source named then named
    else if inSource source typed then typed
    else null;

  resourcePaths = instance:
    concatMap
      (name:
        if instance.nested.${name} != null
        then resourcePaths instance.nested.${name}
        else [ (instance.prefix ++ [ name ]) ])
      (attrNames instance.decls);

  evaluateResource = instances: path:
    let
      name = lastOf path;
      level = lookupLevel instances.outputs (parentOf path);
      references = lookupLevel instances.references (parentOf path);
      decl =
        if !(hasAttr name level.decls) then fail "there is no resource ${show path}" null
        else level.decls.${name};
      position = resourcePosition instances.source name level.decls;
      checked =
        if !isAttrs decl then fail "resource ${show path} must be an attribute set with `type` and `inputs`, got ${describeValue decl}" position
        else if !(decl ? type) then fail "resource ${show path} has no `type` (write `type = \"<provider>.<type>\";`, e.g. \"local.file\")" position
        else if !isString decl.type then fail "`type` of resource ${show path} must be a string like \"local.file\", got ${describeValue decl.type}" position
        else decl;
      typeParts = split "\\." checked.type;
      providerName = head typeParts;
      resourceType = concatStringsSep "." (filter isString (tail (tail typeParts)));
      referenceDecl = references.decls.${name};
      provider = providerAt instances path providerName;
      providerSpec = {
        name = providerName;
        executable = if provider == null then null else provider.executable;
        args = if provider == null then [ ] else provider.args or [ ];
      };
    in
    if length typeParts < 3 || resourceType == "" || providerName == "" then
      fail "`type` of resource ${show path} must be \"<provider>.<type>\", like \"local.file\"; got \"${checked.type}\"" position
    else if provider == null && providerName != "local" then
      fail "resource ${show path} uses provider `${providerName}`, which is not declared: add `providers.${providerName} = { executable = \"/path/to/provider\"; };` to the deployment" position
    else if provider != null && !(isAttrs provider && isString (provider.executable or null) && isList (provider.args or [ ])) then
      fail "`providers.${providerName}` must be `{ executable = \"<path>\"; args = [ ... ]; }`" position
    else if !isAttrs (checked.inputs or { }) then
      fail "`inputs` of resource ${show path} must be an attribute set, got ${describeValue checked.inputs}" position
    else {
      inherit position;
      type = checked.type;
      provider = providerSpec;
      inherit resourceType;
      inputs = checked.inputs or { };
      needs = derivationsOf { inputs = checked.inputs or { }; provider = providerSpec; };
      state = if (referenceDecl.state or null) == null then null else referencePath "state" path referenceDecl.state;
      dependsOn = map (referencePath "dependsOn" path) (referenceDecl.dependsOn or [ ]);
    };

  # Each visible option under `options` (an option tree of `lib.evalModules`), its
  # sub-options included, as `lib.optionAttrSetToDocList` walks them (`<name>` for each
  # attribute of an `attrsOf (submodule …)`): its path, description and type as text, its
  # default and example when they are literal text or a plain value, and where it is
  # declared (with line and column where this lib records them). The module system's own
  # `_module` options are left out, and so is a value that cannot be shown, rather than
  # failing the list.
  optionList = lib: options:
    let
      # Text as written (`mdDoc`, `literalMD` and `literalExpression` give theirs), a
      # plain value as Nix would write it when `asValue`, else nothing.
      shown = asValue: value:
        let
          attempt = builtins.tryEval (
            if isAttrs value && value ? text then value.text
            else if isString value then (if asValue then toJSON value else value)
            else if asValue && (builtins.isBool value || builtins.isInt value || builtins.isFloat value || value == null) then toJSON value
            else null);
        in
        if attempt.success && (isString attempt.value || attempt.value == null) then attempt.value else null;
      declarations = option:
        let
          positions = option.declarationPositions or null;
          files = filter (file: file != "<unknown-file>") (option.declarations or [ ]);
        in
        if isList positions && positions != [ ] then map (p: { inherit (p) file line column; }) positions
        else map (file: { file = toString file; }) files;
      entry = option: {
        path = option.loc;
        description = shown false (option.description or null);
        type = shown false (option.type.description or null);
        default =
          if option ? defaultText then shown true option.defaultText
          else if option ? default then shown true option.default
          else null;
        example = if option ? example then shown true option.example else null;
        declarations = declarations option;
      };
      walk = options: concatMap
        (option:
          let
            visible = option.visible or true;
            subOptions = option.type.getSubOptions option.loc;
          in
          if head option.loc == "_module" || (option.internal or false) || visible == false then [ ]
          else [ (entry option) ] ++ (if visible == "shallow" || subOptions == { } then [ ] else walk subOptions))
        (lib.collect lib.isOption options);
    in
    walk options;

  # `scripts.<name> = { program; args; outputs; }` of one level of a deployment.
  scriptsOf = instance:
    let scripts = instance.declared.scripts or { }; in
    if isAttrs scripts then scripts
    else fail "`scripts` of ${instance.where} must be an attribute set, got ${describeValue scripts}" null;

  # Every script, nested ones with their path, and where each is declared.
  scriptList = instance:
    let scripts = scriptsOf instance; in
    map (name: { script = instance.prefix ++ [ name ]; position = unsafeGetAttrPos name scripts; }) (attrNames scripts)
    ++ concatMap
      (name: if instance.nested.${name} != null then scriptList instance.nested.${name} else [ ])
      (attrNames instance.decls);

  # An output becomes an environment variable of the same name.
  isVariableName = name: builtins.match "[A-Za-z_][A-Za-z0-9_]*" name != null && name != "NIXOPS4_OUTPUTS_FILE";

  evaluateScript = instances: path:
    let
      name = lastOf path;
      scripts = scriptsOf (lookupLevel instances.outputs (parentOf path));
      position = unsafeGetAttrPos name scripts;
      decl =
        if hasAttr name scripts then scripts.${name}
        else fail "the deployment has no script ${show path} (it has: ${concatStringsSep ", " (map (s: show s.script) (scriptList instances.outputs))})" null;
      program = decl.program or null;
      args = decl.args or [ ];
      outputs = decl.outputs or { };
      badNames = filter (n: !isVariableName n) (attrNames outputs);
    in
    if !isAttrs decl then
      fail "script ${show path} must be an attribute set with `program`, got ${describeValue decl}" position
    else if !(isString program || builtins.isPath program) then
      fail "`program` of script ${show path} must be the program to run, a string or a path, got ${describeValue program}" position
    else if !(isList args && builtins.all isString args) then
      fail "`args` of script ${show path} must be a list of strings" position
    else if !isAttrs outputs then
      fail "`outputs` of script ${show path} must be an attribute set, got ${describeValue outputs}" position
    else if badNames != [ ] then
      fail "output `${head badNames}` of script ${show path} cannot be an environment variable: use letters, digits and `_`, not a digit first, and not NIXOPS4_OUTPUTS_FILE" position
    else
      let run = { program = "${program}"; inherit args outputs; }; in
      run // { needs = derivationsOf run; inherit position; };
in
{
  # A fresh application of deployment `name` of `flake`, reading outputs from `outputsDir`.
  instance = flake: name: outputsDir:
    let deployments = flake.nixops4Deployments or { }; in
    if !(hasAttr name deployments)
    then fail "the flake has no deployment `${name}` (it has: ${concatStringsSep ", " (attrNames deployments)})" null
    else makeInstances (builtins.unsafeDiscardStringContext (toString flake.outPath)) name outputsDir deployments.${name};

  deployments = flake: toJSON (attrNames (flake.nixops4Deployments or { }));

    resources = instances: toJSON (resourcePaths instances.outputs);

  # The state resource each resource names (`state = resources.<name>`), or null; read
  # from references only, so it never waits. Resources whose declaration cannot be read
  # here are left out; evaluating them reports why.
  stateReferences = instances: toJSON (filter (entry: entry != null) (map
    (path:
      let
        attempt = builtins.tryEval (
          let decl = (lookupLevel instances.references (parentOf path)).decls.${lastOf path}; in
          if (decl.state or null) == null then null else referencePath "state" path decl.state);
      in
      if attempt.success then { resource = path; state = attempt.value; } else null)
    (resourcePaths instances.outputs)));

    resource = instances: path: toJSON (evaluateResource instances path);

  # Many resources at once: each one's JSON, or null where evaluating it threw (it waits
  # or failed; the evaluator asks for that one alone).
  resourceBatch = instances: paths: toJSON (map
    (path:
      let attempt = builtins.tryEval (toJSON (evaluateResource instances path)); in
      if attempt.success then attempt.value else null)
    paths);

  # Where a resource is declared, or null.
  position = instances: path:
    toJSON (resourcePosition instances.source (lastOf path) (lookupLevel instances.outputs (parentOf path)).decls);

  scripts = instances: toJSON (scriptList instances.outputs);

  # The options of a module-system deployment (`lib.moduleDeployment`), none for others.
  options = instances:
    let carried = instances.references.declared._nixops4Options or null; in
    toJSON (if carried == null then [ ] else optionList carried.lib carried.options);

  script = instances: path: toJSON (evaluateScript instances path);

  output = instances: name:
    let outputs = instances.outputs.declared.outputs or { }; in
    if hasAttr name outputs then toJSON outputs.${name}
    else fail "the deployment has no output `${name}` (it has: ${concatStringsSep ", " (attrNames outputs)})" null;
}
