-- wrk script: each connection waits a random pause before its next request, so that the connections
-- together offer about `rate` requests per second (arrivals spread out, not in lock-step bursts).
-- Usage: wrk -c64 ... -s bench/paced.lua URL -- RATE 64
-- Latency is then what a request costs at that load, not the queue of a saturated server: with wrk's
-- closed loop at saturation every connection waits for the 63 others, so p99 >= 64 / throughput.
local mean_ms = 64

function init(args)
  local rate = tonumber(args[1]) or 1000
  local connections = tonumber(args[2]) or 64
  mean_ms = connections / rate * 1000  -- each connection offers rate / connections requests a second
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "1", 16) % 100000)
end

function delay()
  return math.random() * 2 * mean_ms  -- uniform, mean mean_ms
end
