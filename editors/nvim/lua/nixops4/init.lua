-- The NixOps4 plugin: options from vim.g.nixops4, starting the language server on every
-- Neovim from 0.7 on, and the buffer-local :NixOps4 command with its subcommands (plan,
-- apply, destroy, run, refresh, script). Plans and applies run in the server; this file only asks
-- and shows.
local M = {}

local defaults = {
  -- How to start the server.
  cmd = { 'nixops4-lsp' },
  -- Whether the workspace is trusted: only then does the server evaluate, plan and apply.
  trusted = false,
  filetypes = { 'nix' },
  root_markers = { 'flake.nix', '.git' },
}

function M.options()
  return vim.tbl_deep_extend('force', defaults, vim.g.nixops4 or {})
end

local function notify(message, level)
  vim.notify('NixOps4: ' .. message, level or vim.log.levels.INFO)
end

-- Shows work-done progress as it comes (Neovim keeps it too, for statuslines).
local function progress_handler(err, result, ctx, config)
  local default = vim.lsp.handlers['$/progress']
  if default then
    default(err, result, ctx, config)
  end
  local value = result and result.value or {}
  local text = value.message or value.title
  if text then
    vim.api.nvim_echo({ { 'NixOps4: ' .. text } }, false, {})
  end
end

-- nixops4/planChanged: the server has a new plan (after a save, an apply, ...). Lenses are
-- asked for again (Neovim 0.7 does not take workspace/codeLens/refresh), and the
-- notification is kept in vim.g.nixops4_plan_changed for statuslines and scripts.
local function plan_changed_handler(_, result)
  vim.g.nixops4_plan_changed = result
  vim.lsp.codelens.refresh()
end

local function handlers()
  return { ['$/progress'] = progress_handler, ['nixops4/planChanged'] = plan_changed_handler }
end

function M.lsp_config()
  local options = M.options()
  return {
    cmd = options.cmd,
    filetypes = options.filetypes,
    root_markers = options.root_markers,
    init_options = { trusted = options.trusted },
    handlers = handlers(),
    on_attach = function(client, bufnr)
      M.attach(client, bufnr)
    end,
  }
end

local function root_of(bufnr)
  local file = vim.api.nvim_buf_get_name(bufnr)
  local directory = vim.fn.fnamemodify(file, ':p:h')
  for _, marker in ipairs(M.options().root_markers) do
    local found = vim.fn.findfile(marker, directory .. ';')
    if found == '' then
      found = vim.fn.finddir(marker, directory .. ';')
    end
    if found ~= '' then
      return vim.fn.fnamemodify(found, ':p:h')
    end
  end
  return directory
end

-- Clients started on Neovim 0.7, by root directory.
local clients = {}

function M.start(bufnr)
  local config = M.lsp_config()
  config.name = 'nixops4'
  config.root_dir = root_of(bufnr)
  if vim.lsp.start then
    vim.lsp.start(config, { bufnr = bufnr })
    return
  end
  local id = clients[config.root_dir]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(config)
    clients[config.root_dir] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

function M.enable()
  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config('nixops4', M.lsp_config())
    vim.lsp.enable('nixops4')
    return
  end
  local group = vim.api.nvim_create_augroup('nixops4', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = M.options().filetypes,
    callback = function(event)
      M.start(event.buf)
    end,
  })
end

-- The nixops4-lsp client attached to a buffer, if any.
function M.client_for(bufnr)
  local attached = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = bufnr }) or vim.lsp.buf_get_clients(bufnr)
  for _, client in pairs(attached) do
    if client.name == 'nixops4' then
      return client
    end
  end
end

-- client:request on 0.11+, client.request before.
local function request(client, method, params, handler, bufnr)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

-- `host.key` → { 'host', 'key' } (names with dots are written by the server's lenses).
local function path_of(text)
  local path = {}
  for part in string.gmatch((text:gsub('^resources%.', '')), '[^.]+') do
    table.insert(path, part)
  end
  return path
end

local function execute(bufnr, command, argument, done)
  local client = M.client_for(bufnr)
  if not client then
    notify('the language server is not running for this buffer', vim.log.levels.ERROR)
    return
  end
  argument.uri = vim.uri_from_bufnr(bufnr)
  request(client, 'workspace/executeCommand', { command = command, arguments = { argument } }, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
    elseif done then
      done(result)
    end
    vim.lsp.codelens.refresh()
  end, bufnr)
end

local subcommands = {}

function subcommands.plan(bufnr)
  local client = M.client_for(bufnr)
  if not client then
    return
  end
  request(client, 'nixops4/plan', { uri = vim.uri_from_bufnr(bufnr) }, function(err, result)
    if err then
      notify(err.message, vim.log.levels.ERROR)
      return
    end
    notify(string.format('plan for `%s`: %s', result.deployment, result.summaryText))
    vim.lsp.codelens.refresh()
  end, bufnr)
end

function subcommands.apply(bufnr, resource)
  local argument = { targets = resource and { path_of(resource) } or {} }
  execute(bufnr, 'nixops4.apply', argument, function(report)
    vim.g.nixops4_last_report = report
  end)
end

function subcommands.destroy(bufnr, resource)
  if not resource then
    notify('destroy needs a resource: :NixOps4 destroy <resource>', vim.log.levels.ERROR)
    return
  end
  local answer = vim.fn.confirm('Destroy ' .. resource .. ' and every resource that depends on it?', '&Destroy\n&Cancel', 2)
  if answer ~= 1 then
    return
  end
  execute(bufnr, 'nixops4.destroy', { targets = { path_of(resource) }, confirmed = true }, function(report)
    vim.g.nixops4_last_report = report
  end)
end

function subcommands.run(bufnr, resource, operation)
  if not resource then
    notify('run needs a resource: :NixOps4 run <resource> [operation]', vim.log.levels.ERROR)
    return
  end
  execute(bufnr, 'nixops4.runOperation', { targets = { path_of(resource) }, operation = operation }, function(result)
    vim.g.nixops4_last_report = result
  end)
end

-- Runs a script of the deployment in the server; what it prints goes to the LSP log.
function subcommands.script(bufnr, name, ...)
  if not name then
    notify('script needs a name: :NixOps4 script <name> [args]', vim.log.levels.ERROR)
    return
  end
  local argument = { script = path_of(name), scriptArgs = { ... } }
  execute(bufnr, 'nixops4.runScript', argument, function(result)
    vim.g.nixops4_last_report = result
  end)
end

function subcommands.refresh(bufnr)
  execute(bufnr, 'nixops4.refresh', {}, function(report)
    vim.g.nixops4_last_report = report
  end)
end

local function complete(arg_lead, line)
  local words = vim.split(line, '%s+')
  if #words <= 2 then
    return vim.tbl_filter(function(name)
      return name:find(arg_lead, 1, true) == 1
    end, vim.tbl_keys(subcommands))
  end
  return {}
end

-- On attach: the :NixOps4 command for the buffer, and lenses refreshed now and on save.
function M.attach(_, bufnr)
  vim.api.nvim_buf_create_user_command(bufnr, 'NixOps4', function(command)
    local name = command.fargs[1]
    local run = subcommands[name or '']
    if not run then
      notify('unknown subcommand `' .. (name or '') .. '` (plan, apply, destroy, run, refresh, script)', vim.log.levels.ERROR)
      return
    end
    run(bufnr, unpack(command.fargs, 2))
  end, { nargs = '+', complete = complete, desc = 'NixOps4: plan, apply, destroy, run, refresh, script' })
  vim.api.nvim_create_autocmd('BufWritePost', {
    buffer = bufnr,
    group = vim.api.nvim_create_augroup('nixops4_lenses_' .. bufnr, { clear = true }),
    callback = function()
      vim.lsp.codelens.refresh()
    end,
  })
  vim.lsp.codelens.refresh()
end

return M
