-- wrk script for bench/ingest.py: unique AlertManager-shaped webhooks (1-20 alerts, mean 5),
-- counting acknowledged alerts from the answers. RUN is replaced by the run id.
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
local sizes = {1, 1, 2, 3, 4, 5, 5, 6, 8, 15}
local names = {"KubePodCrashLooping", "KubePodNotReady", "KubeContainerWaiting", "KubeDeploymentReplicasMismatch",
               "KubeHpaMaxedOut", "CPUThrottlingHigh", "KubeJobFailed", "TargetDown"}
function init(args)
  n = 0
  acked = 0
  ok = 0
  failed = 0
  receipts = {}
end
function request()
  n = n + 1
  local size = sizes[(n % #sizes) + 1]
  local parts = {}
  for i = 1, size do
    local k = n * 32 + i
    parts[i] = string.format('{"status":"firing","labels":{"alertname":"%s","namespace":"ns-%d","pod":"app%d-5f6d7c-%05d","severity":"warning","bench_run":"RUN"},"annotations":{"summary":"benchmark alert"},"startsAt":"2026-11-26T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"%04x%012x"}',
      names[(k % #names) + 1], k % 10, math.floor(k / 10) % 10, k % 99991, tid, k)
  end
  local body = '{"version":"4","status":"firing","receiver":"bench","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093","truncatedAlerts":0,"alerts":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/api/v1/alerts", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    local a = string.match(body, '"accepted":%s*(%d+)')
    local rid = string.match(body, '"request_id":%s*"([%w%-]+)"')
    if a then
      acked = acked + tonumber(a)
      if rid then receipts[#receipts + 1] = rid .. " " .. a end
    end
  else
    failed = failed + 1
  end
end
function done(summary, latency, requests)
  local total_acked, total_ok, total_failed = 0, 0, 0
  local out = io.open("RECEIPTS", "w")
  for _, t in ipairs(threads) do
    total_acked = total_acked + t:get("acked")
    total_ok = total_ok + t:get("ok")
    total_failed = total_failed + t:get("failed")
    for _, line in ipairs(t:get("receipts")) do out:write(line, "\n") end
  end
  out:close()
  io.write(string.format("WRK ok=%d failed=%d acked=%d p50_us=%d p99_us=%d\n", total_ok, total_failed,
    total_acked, latency:percentile(50), latency:percentile(99)))
end
