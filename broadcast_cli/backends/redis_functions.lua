#!lua name=broadcast_cli
--[==[
broadcast-cli's Redis functions (Redis >= 7). Every broadcast-cli server loads
this library when it connects; another service may load it too:

    redis-cli FUNCTION LOAD REPLACE "$(cat redis_functions.lua)"

Keys, for prefix P and channel C (the channel in braces is a hash tag, so that a
channel's keys and pub/sub channel live on one Redis Cluster shard):
    P:{C}:meta    hash: s = last seq, e = epoch
    P:{C}:stream  stream of the channel's history, entry id "<seq>-0",
                  fields f = the event frame, t = publish time (ms)
    P:{C}         pub/sub channel that carries each event frame

broadcast_publish 2 P:{C}:meta P:{C}:stream C EVENT PAYLOAD [ORIGIN [ID [SIZE [TTL [META_TTL]]]]]
    Assigns the next seq, appends to history and publishes (PUBLISH P:{C}),
    atomically. PAYLOAD is JSON text. ORIGIN and ID may be empty strings. SIZE
    (messages), TTL and META_TTL (seconds) default to 1000, 600 and 604800.
    Returns {seq, epoch, ts, frame}.

broadcast_spublish (same arguments)
    The same, but publishes over sharded pub/sub (SPUBLISH P:{C}), for servers
    that use it: on a Redis Cluster, or with sharded=true in their Redis URL.

broadcast_history 2 P:{C}:meta P:{C}:stream C SINCE [LIMIT [TTL [META_TTL]]]
    Returns {seq, epoch, frame...}: the channel's position and, unless SINCE is
    -1, the frames of the unexpired messages with a seq greater than SINCE.
    Starts the channel's epoch if it has none.
]==]

local MAX_EVENT_BYTES = 512

local function check_keys(keys, channel)
  if type(channel) ~= 'string' or #channel < 1 or #channel > 128
      or not string.match(channel, '^[%w_%-%.:]+$') then
    return 'invalid channel name: a channel name is 1 to 128 characters, each an ASCII letter, a digit or one of _ - . :'
  end
  local suffix = ':{' .. channel .. '}:meta'
  local meta = keys[1]
  if not meta or #meta <= #suffix or string.sub(meta, -#suffix) ~= suffix then
    return 'the first key must be <prefix>:{' .. channel .. '}:meta'
  end
  local prefix = string.sub(meta, 1, #meta - #suffix)
  if keys[2] ~= prefix .. ':{' .. channel .. '}:stream' then
    return 'the second key must be ' .. prefix .. ':{' .. channel .. '}:stream'
  end
  return nil, prefix
end

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[2])
end

-- The channel's epoch, started (with an empty history) if it has none.
local function epoch_of(meta, stream, sec, usec, meta_ttl)
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = string.format('%08x%05x', sec, usec)
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'e', epoch, 's', 0)
  end
  redis.call('EXPIRE', meta, meta_ttl)
  return epoch
end

local function arg_number(value, default, name)
  if value == nil or value == '' then return default end
  local n = tonumber(value)
  if not n or n < 0 then error(name .. ' must be a non-negative number') end
  return math.floor(n)
end

-- The function that publishes with COMMAND: PUBLISH, or SPUBLISH for sharded pub/sub.
local function publisher(command)
  return function(keys, args)
    local channel, event, payload = args[1], args[2], args[3]
    local err, prefix = check_keys(keys, channel)
    if err then return redis.error_reply(err) end
    if type(event) ~= 'string' or #event < 1 or #event > MAX_EVENT_BYTES then
      return redis.error_reply('an event name must be 1 to ' .. MAX_EVENT_BYTES .. ' bytes')
    end
    if type(payload) ~= 'string' or not pcall(cjson.decode, payload) then
      return redis.error_reply('the payload must be JSON text')
    end
    local origin = args[4] or ''
    local id = args[5] or ''
    local size = arg_number(args[6], 1000, 'SIZE')
    local ttl = arg_number(args[7], 600, 'TTL')
    local meta_ttl = arg_number(args[8], 604800, 'META_TTL')
    if ttl < 1 then ttl = 1 end
    if meta_ttl < ttl then meta_ttl = ttl end

    local meta, stream = keys[1], keys[2]
    local sec, usec = now()
    local ts = sec * 1000 + math.floor(usec / 1000)
    local epoch = epoch_of(meta, stream, sec, usec, meta_ttl)
    local seq = redis.call('HINCRBY', meta, 's', 1)
    if id == '' then id = channel .. ':' .. epoch .. ':' .. seq end

    local frame = '{"channel":' .. cjson.encode(channel)
      .. ',"event":' .. cjson.encode(event)
      .. ',"payload":' .. payload
      .. ',"seq":' .. seq
      .. ',"epoch":"' .. epoch .. '"'
      .. ',"id":' .. cjson.encode(id)
      .. ',"ts":' .. string.format('%d', ts)
    if origin ~= '' then frame = frame .. ',"origin":' .. cjson.encode(origin) end
    frame = frame .. '}'

    if size > 0 then
      redis.call('XADD', stream, 'MAXLEN', size, seq .. '-0', 'f', frame, 't', string.format('%d', ts))
      redis.call('EXPIRE', stream, ttl)
    end
    redis.call(command, prefix .. ':{' .. channel .. '}', frame)
    return {seq, epoch, ts, frame}
  end
end

local function history(keys, args)
  local channel = args[1]
  local err = check_keys(keys, channel)
  if err then return redis.error_reply(err) end
  local since = tonumber(args[2])
  if not since then return redis.error_reply('SINCE must be a number (-1 for the position only)') end
  local limit = arg_number(args[3], 1000, 'LIMIT')
  local ttl = arg_number(args[4], 600, 'TTL')
  local meta_ttl = arg_number(args[5], 604800, 'META_TTL')
  if meta_ttl < ttl then meta_ttl = ttl end

  local meta, stream = keys[1], keys[2]
  local sec, usec = now()
  local epoch = epoch_of(meta, stream, sec, usec, meta_ttl)
  local seq = tonumber(redis.call('HGET', meta, 's') or '0')
  local out = {seq, epoch}
  if since >= 0 and since < seq and limit > 0 then
    local horizon = sec * 1000 + math.floor(usec / 1000) - ttl * 1000
    local entries = redis.call('XRANGE', stream, string.format('%d', since + 1) .. '-0', '+', 'COUNT', limit)
    for _, entry in ipairs(entries) do
      local fields = entry[2]
      local frame, t = nil, nil
      for i = 1, #fields, 2 do
        if fields[i] == 'f' then frame = fields[i + 1] elseif fields[i] == 't' then t = tonumber(fields[i + 1]) end
      end
      if frame and t and t >= horizon then out[#out + 1] = frame end
    end
  end
  return out
end

redis.register_function('broadcast_publish', publisher('PUBLISH'))
redis.register_function('broadcast_spublish', publisher('SPUBLISH'))
redis.register_function('broadcast_history', history)
