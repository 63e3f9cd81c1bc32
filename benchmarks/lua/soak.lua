-- chat.lua with a request budget: the single wrk thread stops after the given number of
-- responses and interrupts wrk, so a run ends on a count instead of at `-d`.
-- Arguments after `--`: those of chat.lua, then the number of responses.
-- Needs wrk's LuaJIT (for `ffi`) and one wrk thread (`-t1`).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "chat.lua")

local ffi = require("ffi")
ffi.cdef([[
int kill(int pid, int sig);
int getpid(void);
]])
local SIGINT = 2

local chat_init = init
local budget = 0
local seen = 0

function init(args)
  chat_init(args)
  budget = tonumber(args[5] or "0") or 0
end

function response(status, headers, body)
  seen = seen + 1
  if budget > 0 and seen == budget then
    wrk.thread:stop()
    ffi.C.kill(ffi.C.getpid(), SIGINT)
  end
end
