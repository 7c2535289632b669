{
  description = "The NixOps4 Nix library, on its own";
  outputs = { self }: { lib = import ./lib.nix; };
}
