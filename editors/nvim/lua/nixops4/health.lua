-- :checkhealth nixops4 — the server binary and its version, `nix`, and the trust setting.
-- Uses vim.health on Neovim 0.10+, and the older `health` module (report_*) before.
local M = {}

local health = vim.health or require('health')
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local error = health.error or health.report_error
local info = health.info or health.report_info

function M.check()
  local options = require('nixops4').options()
  start('nixops4-lsp')
  local program = options.cmd[1]
  if vim.fn.executable(program) == 1 then
    local version = vim.fn.system({ program, '--version' }):gsub('%s+$', '')
    ok(string.format('%s found: %s', vim.fn.exepath(program), version))
  else
    error(program .. ' not found: install it or set vim.g.nixops4 = { cmd = { "/path/to/nixops4-lsp" } }')
  end
  start('nix')
  if vim.fn.executable('nix') == 1 then
    ok('nix found: ' .. vim.fn.system({ 'nix', '--version' }):gsub('%s+$', ''))
  else
    warn('nix not found: plans and apply need it (static features work without)')
  end
  start('trust')
  if options.trusted then
    ok('workspace trusted: plans, apply and operations run')
  else
    info('workspace not trusted: static features only; set vim.g.nixops4 = { trusted = true } to plan and apply')
  end
end

return M
