-- The per-tenant token bucket, evaluated atomically by Redis so that every
-- gateway replica shares one bucket. Mirrors TokenBucket::take_up_to in
-- rate_limit.rs.
--
-- take(key, capacity, rate, want): key is the bucket hash (fields: tokens,
-- ts); takes as many of `want` whole tokens as the bucket holds (a gateway's
-- lease), at least one or none.
-- Returns {granted, remaining, retry_after_ms, reset_after_ms}.
local function take(key, capacity, rate, want)
  capacity = tonumber(capacity)
  rate = tonumber(rate)
  want = math.max(1, tonumber(want))
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or capacity
  local last = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - last) * rate)

  local granted = math.min(math.floor(tokens), want)
  local retry_ms = 0
  if granted >= 1 then
    tokens = tokens - granted
  else
    granted = 0
    retry_ms = math.ceil((1 - tokens) / rate * 1000)
  end
  local reset_ms = math.ceil((capacity - tokens) / rate * 1000)

  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, reset_ms + 1000)
  return {granted, math.floor(tokens), retry_ms, reset_ms}
end

-- KEYS[1]  the bucket hash
-- ARGV[1]  capacity
-- ARGV[2]  refill per second
-- ARGV[3]  how many tokens to take at most (a lease)
return take(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
