-- The per-tenant token bucket, evaluated atomically by Redis so that every
-- gateway replica shares one bucket. Mirrors TokenBucket::take in
-- rate_limit.rs. Prepended to the scripts that take a token.
--
-- take(key, capacity, rate): key is the bucket hash (fields: tokens, ts).
-- Returns {allowed (0/1), remaining, retry_after_ms, reset_after_ms}.
local function take(key, capacity, rate)
  capacity = tonumber(capacity)
  rate = tonumber(rate)
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or capacity
  local last = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - last) * rate)

  local allowed = 0
  local retry_ms = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  else
    retry_ms = math.ceil((1 - tokens) / rate * 1000)
  end
  local reset_ms = math.ceil((capacity - tokens) / rate * 1000)

  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, reset_ms + 1000)
  return {allowed, math.floor(tokens), retry_ms, reset_ms}
end
