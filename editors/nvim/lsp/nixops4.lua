-- The nixops4-lsp configuration that Neovim 0.11+ reads for vim.lsp.enable('nixops4').
return require('nixops4').lsp_config()
