
-- KEYS[1]  the bucket hash
-- ARGV[1]  capacity
-- ARGV[2]  refill per second
return take(KEYS[1], ARGV[1], ARGV[2])
