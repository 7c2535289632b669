-- NixOps4 for Neovim: starts nixops4-lsp for Nix files. Neovim 0.11+ goes through
-- vim.lsp.enable (with lsp/nixops4.lua); older ones, down to 0.7, through vim.lsp.start or
-- vim.lsp.start_client. No setup() call: configure with vim.g.nixops4 (see :h nixops4).
if vim.g.loaded_nixops4 then
  return
end
vim.g.loaded_nixops4 = true
require('nixops4').enable()
