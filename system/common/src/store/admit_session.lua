
-- A session's tenant and a token from that tenant's bucket, in one round
-- trip instead of a GET and then the bucket.
--
-- KEYS[1]  the session key
-- ARGV[1]  the bucket keys' prefix (the tenant follows it)
-- ARGV[2]  capacity, or '' when rate limiting is off
-- ARGV[3]  refill per second
-- Returns {} for an unknown or expired session, {tenant} without a bucket,
-- else {tenant, allowed, remaining, retry_after_ms, reset_after_ms}.
--
-- The bucket's key is derived from the session's value, so it is not
-- declared in KEYS: right for one Redis, as the stack runs; a Redis Cluster
-- would need the session and the bucket in one hash slot.
local tenant = redis.call('GET', KEYS[1])
if not tenant then
  return {}
end
if ARGV[2] == '' then
  return {tenant}
end
local decision = take(ARGV[1] .. tenant, ARGV[2], ARGV[3])
return {tenant, decision[1], decision[2], decision[3], decision[4]}
