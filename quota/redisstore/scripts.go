package redisstore

import "github.com/redis/go-redis/v9"

// The scripts run inside Redis, one call each, so every decision and its
// write are atomic: no other client runs between the check and the write.
// All keys of a call share the account's {hash tag}, so they live in one
// slot of a Redis Cluster. Holds are a sorted set per account and day:
// member "<n>:<hold id>", score its expiry in milliseconds of the server's
// own clock (TIME), so the hosts' clocks never matter. Redis 5+ replicates
// a script's effects, not the script, so TIME is safe to call.

// luaPrelude: now in ms from the server's clock; live(h) sums the relays of
// the live holds of set h.
const luaPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(h)
  local n = 0
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', h, '(' .. now, '+inf')) do
    n = n + tonumber(string.match(m, '^(%d+):'))
  end
  return n
end
`

// reserveScript: KEYS usage, holds; ARGV member, n, limit, ttl ms.
// Returns {granted 0|1, used, reserved}.
var reserveScript = redis.NewScript(luaPrelude + `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = live(KEYS[2])
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {1, used, held}
end
local n, ttl = tonumber(ARGV[2]), tonumber(ARGV[4])
if used + held + n > tonumber(ARGV[3]) then
  return {0, used, held}
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {1, used, held + n}
`)

// peekScript: KEYS usage, holds. Returns {used, reserved}; writes nothing.
var peekScript = redis.NewScript(luaPrelude + `
return {tonumber(redis.call('GET', KEYS[1]) or '0'), live(KEYS[2])}
`)

// luaRecordLimit: the limit of an account record (quota.AccountRecord as
// JSON) on day: DailyLimit plus that day's TopUps, 0 unless Status is
// active, as the engine's verdicts say; fallback without a record; dry run
// (the store's, or the record's own DryRun) lifts a positive limit.
const luaRecordLimit = `
local function recordLimit(rec, day, fallback, dry)
  local limit = fallback
  if rec then
    local r = cjson.decode(rec)
    limit = tonumber(r.DailyLimit) or 0
    if type(r.TopUps) == 'table' then
      for _, t in ipairs(r.TopUps) do
        if t.Day == day then limit = limit + (tonumber(t.N) or 0) end
      end
    end
    if r.Status ~= 'active' then limit = 0 end
    if r.DryRun == true then dry = '1' end
  end
  if limit > 0 and dry == '1' then limit = 2 ^ 52 end
  return limit
end
`

// commitScript: KEYS marker, account record, then usage and holds of each
// day; ARGV limit, usage ttl ms, marker ttl ms, mode ("plain": limit
// holds; "record": the record's limit on each day, or fallback), fallback,
// dry run 0|1, then per day the day, the number of members and the
// members. Returns {"ok"|"done", "total,total,…", record} or {"lost", day
// index, record}, or in record mode {"status", "", record} for an account
// whose status is not active, counting nothing. It checks every day before
// it writes any: all or nothing.
var commitScript = redis.NewScript(luaPrelude + luaRecordLimit + `
local mode = ARGV[4]
local rec = false
if mode == 'record' then
  rec = redis.call('GET', KEYS[2])
end
local done = redis.call('GET', KEYS[1])
if done then
  return {'done', done, rec or ''}
end
if rec and cjson.decode(rec).Status ~= 'active' then
  return {'status', '', rec}
end
local i = 7
local days = {}
for d = 3, #KEYS, 2 do
  local u, h = KEYS[d], KEYS[d + 1]
  local day = ARGV[i]
  local k = tonumber(ARGV[i + 1])
  i = i + 2
  redis.call('ZREMRANGEBYSCORE', h, '-inf', now)
  local add, missing, members = 0, 0, {}
  for _ = 1, k do
    local m = ARGV[i]
    i = i + 1
    local n = tonumber(string.match(m, '^(%d+):'))
    add = add + n
    if not redis.call('ZSCORE', h, m) then
      missing = missing + n
    end
    members[#members + 1] = m
  end
  -- A hold that expired is reserved again if the limit leaves room.
  if missing > 0 then
    local limit = tonumber(ARGV[1])
    if mode == 'record' then
      limit = recordLimit(rec, day, tonumber(ARGV[5]), ARGV[6])
    end
    local used = tonumber(redis.call('GET', u) or '0')
    if used + live(h) + missing > limit then
      return {'lost', tostring((d - 1) / 2), rec or ''}
    end
  end
  days[#days + 1] = {u, h, add, members}
end
local totals = {}
for _, e in ipairs(days) do
  for _, m in ipairs(e[4]) do
    redis.call('ZREM', e[2], m)
  end
  totals[#totals + 1] = redis.call('INCRBY', e[1], e[3])
  redis.call('PEXPIRE', e[1], ARGV[2])
end
local enc = table.concat(totals, ',')
redis.call('SET', KEYS[1], enc, 'PX', ARGV[3])
return {'ok', enc, rec or ''}
`)

// releaseScript: KEYS holds of each day; ARGV per day the number of members
// and the members.
var releaseScript = redis.NewScript(`
local i = 1
for _, h in ipairs(KEYS) do
  local k = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, k do
    redis.call('ZREM', h, ARGV[i])
    i = i + 1
  end
end
return 0
`)

// peekRecordScript: KEYS usage, holds, account record. Returns {used,
// reserved, record or ""}; writes nothing.
var peekRecordScript = redis.NewScript(luaPrelude + `
return {tonumber(redis.call('GET', KEYS[1]) or '0'), live(KEYS[2]), redis.call('GET', KEYS[3]) or ''}
`)

// reserveRecordScript: KEYS usage, holds, account record; ARGV member, n,
// ttl ms, fallback limit, dry run 0|1, day. The limit is the record's
// (quota.AccountRecord as JSON: DailyLimit plus the TopUps of the day,
// none unless Status is active, as the engine's verdicts say) or the
// fallback without a record. Returns {granted 0|1, used, reserved,
// record or ""}.
var reserveRecordScript = redis.NewScript(luaPrelude + luaRecordLimit + `
local rec = redis.call('GET', KEYS[3])
local limit = recordLimit(rec, ARGV[6], tonumber(ARGV[4]), ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = live(KEYS[2])
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {1, used, held, rec or ''}
end
local n, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if limit <= 0 or used + held + n > limit then
  return {0, used, held, rec or ''}
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {1, used, held + n, rec or ''}
`)
