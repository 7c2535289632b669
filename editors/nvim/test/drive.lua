-- Drives the plugin in headless Neovim for tests/tests/editors_nvim.rs: waits for the
-- server to attach, takes the diagnostics of a file with a typo, completes inputs, fixes
-- the typo and saves, waits for the plan's code lenses (which the plugin asks for when the
-- server says the plan changed), runs :NixOps4 apply and
-- :checkhealth nixops4, and writes what it saw as JSON to $NIXOPS4_RESULT.
local result = { version = string.format('%d.%d.%d', vim.version().major, vim.version().minor, vim.version().patch) }

local function wait(what, milliseconds, condition)
  if not vim.wait(milliseconds, condition, 50) then
    error('timed out waiting for ' .. what)
  end
end

local function nixops4_attached(bufnr)
  return require('nixops4').client_for(bufnr) ~= nil
end

local function lens_titles(bufnr)
  local titles = {}
  for _, lens in ipairs(vim.lsp.codelens.get(bufnr) or {}) do
    table.insert(titles, lens.command and lens.command.title or '')
  end
  return titles
end

local ok, problem = pcall(function()
  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('NIXOPS4_FILE')))
  local bufnr = vim.api.nvim_get_current_buf()
  result.filetype = vim.bo[bufnr].filetype
  wait('the server to attach', 20000, function()
    return nixops4_attached(bufnr)
  end)

  wait('diagnostics', 20000, function()
    return #vim.diagnostic.get(bufnr) > 0
  end)
  result.diagnostics = {}
  for _, diagnostic in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(result.diagnostics, diagnostic.message)
  end

  local position = { line = tonumber(os.getenv('NIXOPS4_COMPLETE_LINE')), character = tonumber(os.getenv('NIXOPS4_COMPLETE_CHARACTER')) }
  local responses = vim.lsp.buf_request_sync(bufnr, 'textDocument/completion', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = position,
  }, 20000)
  result.completion = {}
  for _, response in pairs(responses or {}) do
    local items = response.result and (response.result.items or response.result) or {}
    for _, item in ipairs(items) do
      table.insert(result.completion, item.label)
    end
  end

  -- Fix the typo and save: the diagnostics clear and a plan follows.
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  for i, line in ipairs(lines) do
    lines[i] = line:gsub('contnets', 'contents')
  end
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.cmd('write')
  wait('the diagnostics to clear', 20000, function()
    return #vim.diagnostic.get(bufnr) == 0
  end)
  -- The plugin asks for the lenses when the server says the plan changed.
  wait('the plan lenses', 60000, function()
    for _, title in ipairs(lens_titles(bufnr)) do
      if title:find('create', 1, true) then
        return true
      end
    end
    return false
  end)
  result.lenses = lens_titles(bufnr)
  result.plan_changed = vim.g.nixops4_plan_changed

  vim.cmd('NixOps4 apply')
  wait('the apply', 60000, function()
    return vim.g.nixops4_last_report ~= nil
  end)
  result.report = vim.g.nixops4_last_report

  vim.cmd('checkhealth nixops4')
  result.health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
end)

if not ok then
  result.error = tostring(problem)
end
local file = io.open(os.getenv('NIXOPS4_RESULT'), 'w')
file:write(vim.fn.json_encode(result))
file:close()
vim.cmd('qall!')
