-- wrk script: POST one JSON body (read from the file given after `--`) on every request, and
-- print a machine-readable summary at the end.
--
--   wrk -t1 -c16 -d10s -s benchmarks/wrk_post.lua http://127.0.0.1:8000/score -- body.json
--
-- The summary line starts with "BENCH_JSON " followed by one JSON object: requests, duration
-- (microseconds), bytes, errors by kind, and latency mean/stdev/max/percentiles (microseconds).

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s wrk_post.lua <url> -- <body file>")
  end
  local file = assert(io.open(path, "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local percentiles = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    table.insert(percentiles, string.format('"%s": %d', tostring(p), latency:percentile(p)))
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, "percentiles": {%s}}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency.mean, latency.stdev, latency.max, table.concat(percentiles, ", ")))
end
