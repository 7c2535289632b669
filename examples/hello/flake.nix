{
  description = "A small NixOps4 deployment: files and a command, on this machine";

  outputs = { self }: {
    nixops4Deployments.default = { resources, ... }: {
      resources = {
        greeting = {
          type = "local.file";
          inputs = { name = "out/greeting.txt"; contents = "Hello from NixOps4!\n"; };
        };
        # Runs after `greeting` exists, because it uses its output.
        checksum = {
          type = "local.exec";
          inputs = { executable = "sha256sum"; args = [ resources.greeting.path ]; };
        };
        report = {
          type = "local.file";
          inputs = {
            name = "out/report.txt";
            contents = "greeting.txt has checksum ${builtins.head (builtins.split " " resources.checksum.stdout)}\n";
            mode = "0600";
          };
        };
      };
      outputs.report = resources.report.path;
    };
  };
}
