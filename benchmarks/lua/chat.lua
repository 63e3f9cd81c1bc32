-- POSTs a chat completion whose prompt carries a nonce unique to this wrk run, thread and
-- request, so no cache can answer; prints one JSON summary line (latency in microseconds).
-- Arguments after `--`: model, stream ("true"/"false"), max_tokens, run token.

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

local model, stream, max_tokens, run_token
local counter = 0
local prefix, suffix

function init(args)
  model = args[1] or "bench-model"
  stream = args[2] == "true"
  max_tokens = tonumber(args[3] or "16")
  run_token = args[4] or "run"
  prefix = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello '
    .. run_token .. "-" .. tostring(thread_id) .. "-"
  suffix = '"}],"max_tokens":' .. max_tokens
  if stream then
    suffix = suffix .. ',"stream":true'
  end
  suffix = suffix .. "}"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. counter .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"max":%d,"mean":%.3f,"stdev":%.3f,'
      .. '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
