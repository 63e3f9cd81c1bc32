-- Chat completions the response cache may answer: every body asks for temperature 0.
-- Arguments after `--`: those of chat.lua (model, stream, max_tokens, run token), then the mode:
--   "repeat": the same body on every request, thread and run (one miss, then hits);
--   "unique": a nonce unique to the run, thread and request (every request a miss, then stored).
-- Summary line and thread ids come from chat.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "chat.lua")

local model, max_tokens, run_token, mode
local counter = 0
local prefix, suffix, fixed

function init(args)
  model = args[1] or "bench-model"
  max_tokens = tonumber(args[3] or "16")
  run_token = args[4] or "run"
  mode = args[5] or "unique"
  if mode ~= "repeat" and mode ~= "unique" then
    error("cache.lua: mode must be repeat or unique, got " .. tostring(mode))
  end
  prefix = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello '
  suffix = '"}],"max_tokens":' .. max_tokens .. ',"temperature":0}'
  if mode == "repeat" then
    fixed = prefix .. "cached" .. suffix
  else
    prefix = prefix .. run_token .. "-" .. tostring(thread_id) .. "-"
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  if fixed then
    return wrk.format(nil, nil, nil, fixed)
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. counter .. suffix)
end
