-- Driven by bench/load.py. Arguments after "--": method, path, body ("" for none), keys file ("" for none),
-- Idempotency-Key prefix ("" for none: otherwise every request carries a new key <prefix>-<thread>-<n>).
-- Each wrk thread runs one connection and sends one account's key, so N threads = N clients = N accounts.
-- Status codes are counted per thread and summed in done(), printed as one JSON line after "BENCH_JSON ".

local threads = {}
local next_index = 0

function setup(thread)
  next_index = next_index + 1
  thread:set("index", next_index)
  table.insert(threads, thread)
end

function init(args)
  local headers = {}
  if args[3] ~= "" then
    headers["Content-Type"] = "application/json"
  end
  if args[4] ~= "" then
    local keys = {}
    for line in io.lines(args[4]) do
      table.insert(keys, line)
    end
    headers["Authorization"] = "Bearer " .. keys[(index - 1) % #keys + 1]
  end
  statuses = {}
  method, path, body, fixed_headers, sent = args[1], args[2], args[3] ~= "" and args[3] or nil, headers, 0
  idempotency_prefix = args[5] ~= "" and (args[5] .. "-" .. index .. "-") or nil
  prepared = wrk.format(method, path, headers, body)
end

function request()
  if idempotency_prefix == nil then
    return prepared
  end
  sent = sent + 1
  fixed_headers["Idempotency-Key"] = idempotency_prefix .. sent
  return wrk.format(method, path, fixed_headers, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status >= 300 and first_error == nil then
    first_error = key .. " " .. string.sub(body or "", 1, 300):gsub('[%c"\\]', " ")
  end
end

function done(summary, latency, requests)
  local counts, first_error = {}, ""
  for _, thread in ipairs(threads) do
    first_error = first_error ~= "" and first_error or (thread:get("first_error") or "")
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, '
      .. '"max_us": %d, "socket_errors": %d, "statuses": {%s}, "first_error": "%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    latency.max, e.connect + e.read + e.write + e.timeout, table.concat(parts, ", "), first_error
  ))
end
