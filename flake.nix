{
  description = "NixOps4: deployments as Nix expressions, applied by resource providers";
  outputs = { self }: {
    # Helpers for writing deployments (nested deployments, sequences); see docs/deployments.md.
    lib = import ./nix/lib.nix;
  };
}
