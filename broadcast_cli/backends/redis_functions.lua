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

broadcast_publish 2 P:{C}:meta P:{C}:stream C EVENT PAYLOAD [ORIGIN [ID [SIZE [TTL [META_TTL [MAX_PAYLOAD]]]]]]
    Assigns the next seq, appends to history and publishes (PUBLISH P:{C}),
    atomically. PAYLOAD is JSON text. ORIGIN and ID may be empty strings. SIZE
    (messages), TTL and META_TTL (seconds) default to 1000, 600 and 604800.
    The protocol's rules apply, as in POST /publish: channel and event names,
    ORIGIN and ID of at most 128 characters (UTF-8), and a PAYLOAD that is JSON
    as RFC 8259 has it, with no object that repeats a key, of at most
    MAX_PAYLOAD bytes (default 65536, the servers' default limit; 0: the caller
    checked the payload itself, as broadcast-cli's servers do, and it is not
    looked at). A broken rule is an error reply "ERR broadcast: ...", and
    nothing is published. docs/redis.md has the details.
    Returns {seq, epoch, ts, frame}.

broadcast_spublish (same arguments)
    The same, but publishes over sharded pub/sub (SPUBLISH P:{C}), for servers
    that use it: on a Redis Cluster, or with sharded=true in their Redis URL.

broadcast_history 2 P:{C}:meta P:{C}:stream C SINCE [LIMIT [TTL [META_TTL]]]
    Returns {seq, epoch, frame...}: the channel's position and, unless SINCE is
    -1, the frames of the unexpired messages with a seq greater than SINCE.
    Starts the channel's epoch if it has none.

broadcast_version 0 (read-only: FCALL_RO works)
    Returns the library's version and the rules it applies, as name, value pairs.
]==]

-- The protocol's rules, as broadcast_cli/message.py and broadcast_cli/protocol.py define them: a
-- broadcast-cli server writes its own values over these when it loads the library, and a unit test
-- checks that the values written here are the same (so loading this file by hand gives the same rules).
local VERSION = 2 --[[broadcast:VERSION]]
local MAX_CHANNEL_LENGTH = 128 --[[broadcast:MAX_CHANNEL_LENGTH]]
local MAX_EVENT_LENGTH = 128 --[[broadcast:MAX_EVENT_LENGTH]]
local MAX_ID_LENGTH = 128 --[[broadcast:MAX_ID_LENGTH]]
local MAX_PAYLOAD_BYTES = 65536 --[[broadcast:MAX_PAYLOAD_BYTES]]
local NOT_A_NAME_CHARACTER = '[^A-Za-z0-9%_%-%.%:]' --[[broadcast:NOT_A_NAME_CHARACTER]]
local CHANNEL_RULE = '1 to 128 characters, each an ASCII letter, a digit or one of _ - . :' --[[broadcast:CHANNEL_RULE]]
local EVENT_RULE = '1 to 128 characters, each an ASCII letter, a digit or one of _ - . :' --[[broadcast:EVENT_RULE]]

local function fail(message)
  return redis.error_reply('ERR broadcast: ' .. message)
end

-- Why NAME breaks the naming rule (for a WHAT name: 'channel' or 'event'), or nil if it follows it.
local function name_error(what, name, max_length, rule)
  local rule_is = (what == 'event' and 'an ' or 'a ') .. what .. ' name is ' .. rule
  if type(name) ~= 'string' or #name == 0 then
    return 'the ' .. what .. ' name is missing or empty: ' .. rule_is
  end
  if #name > max_length then
    return string.format('%s name longer than %d characters (%d bytes): %s', what, max_length, #name, rule_is)
  end
  local at = string.find(name, NOT_A_NAME_CHARACTER)
  if at then
    return string.format('invalid %s name: byte %d (0x%02x) is not allowed: %s',
      what, at, string.byte(name, at), rule_is)
  end
  return nil
end

local function check_keys(keys, channel)
  local err = name_error('channel', channel, MAX_CHANNEL_LENGTH, CHANNEL_RULE)
  if err then return err end
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

-- Every well-formed UTF-8 sequence of 2 to 4 bytes (RFC 3629: no overlong form, no surrogate, nothing
-- above U+10FFFF), the most frequent first: each pass shortens the text for the next.
local UTF8_SEQUENCES = {
  '[\225-\236\238\239][\128-\191][\128-\191]',
  '[\194-\223][\128-\191]',
  '\224[\160-\191][\128-\191]',
  '\237[\128-\159][\128-\191]',
  '\240[\144-\191][\128-\191][\128-\191]',
  '[\241-\243][\128-\191][\128-\191][\128-\191]',
  '\244[\128-\143][\128-\191][\128-\191]',
}

-- Whether TEXT is UTF-8. Pattern passes, no loop over bytes: a pattern costs about as much per position
-- it is tried at, but a run such as [%z\1-\127]+ is taken in one step. Each well-formed sequence becomes a
-- dot, each run of ASCII one space (which keeps what is left from touching), and any byte above 127 still
-- there is ill-formed. After the two frequent kinds of sequences, little is left to look at.
local function is_utf8(text)
  if string.find(text, '^[%z\1-\127]*$') then return true end
  for index, sequence in ipairs(UTF8_SEQUENCES) do
    text = string.gsub(text, sequence, '.')
    if index <= 2 then text = string.gsub(text, '[%z\1-\127]+', ' ') end
  end
  return not string.find(text, '[\128-\255]')
end

-- The number of characters of TEXT (a short string) if it is UTF-8, else nil.
local function utf8_length(text)
  if not is_utf8(text) then return nil end
  return #text - #string.gsub(text, '[^\128-\191]+', '')  -- every byte but the continuation bytes
end

local function id_error(name, value)
  local length = utf8_length(value)
  if not length then return name .. ' is not valid UTF-8' end
  if length > MAX_ID_LENGTH then
    return string.format('%s longer than %d characters (%d)', name, MAX_ID_LENGTH, length)
  end
  return nil
end

-- Whether TOKEN (a run of characters outside strings) is a JSON number (RFC 8259 §6) that a double holds.
local function is_number(token)
  if #token < 300 and (string.find(token, '^%-?[1-9]%d*$') or string.find(token, '^%-?[1-9]%d*%.%d+$')
      or string.find(token, '^%-?0$') or string.find(token, '^%-?0%.%d+$')) then
    return true  -- the usual numbers, below 1e300 and without an exponent, need nothing more
  end
  local integer, rest = string.match(token, '^%-?(%d+)(.*)$')
  if not integer or (#integer > 1 and string.byte(integer) == 48) then return false end  -- 48: '0'
  if rest ~= '' and not (string.find(rest, '^%.%d+$') or string.find(rest, '^%.%d+[eE][%+%-]?%d+$')
      or string.find(rest, '^[eE][%+%-]?%d+$')) then
    return false
  end
  local n = tonumber(token)
  return n ~= nil and n > -math.huge and n < math.huge
end

-- The number of keys of every object in VALUE, as cjson decoded it (an object is a table with string keys).
local function key_count(value)
  local count, pending, n = 0, {value}, 1
  while n > 0 do
    local item = pending[n]
    pending[n] = nil
    n = n - 1
    for key, child in pairs(item) do
      if type(key) == 'string' then count = count + 1 end
      if type(child) == 'table' then
        n = n + 1
        pending[n] = child
      end
    end
  end
  return count
end

-- Why PAYLOAD, which cjson has decoded as VALUE, is not JSON as RFC 8259 has it, or nil. cjson also
-- takes NaN, nan, Infinity, inf, hexadecimal numbers, leading zeros, +1, 1., numbers too large for a
-- double and raw control characters in strings, all of which the subscribers' parsers (orjson,
-- JSON.parse) refuse; and, as POST /publish does, an object that repeats a key is refused (cjson keeps
-- one value: the count of keys tells). Pattern passes over the text, and loops over what is outside
-- its strings and over its objects.
local function strictness_error(payload, value, special)
  local text = payload
  if string.find(text, '\\', 1, true) then
    text = string.gsub(text, '\\.', '')  -- no escape sequence left: every string is now "[^"]*"
  end
  local skeleton = string.gsub(text, '"[^"]*"', '""')
  if special then
    local controls = string.gsub(text, '[^%z\1-\31]+', '')  -- the control characters, in one pass over runs
    if string.find(controls, '[^\t\n\r]') then return 'a raw control character (escape it: \\u0000)' end
    if #controls > #string.gsub(skeleton, '[^\t\n\r]+', '') then
      return 'a raw tab or line break in a string (escape it: \\t, \\n, \\r)'
    end
  end
  for token in string.gmatch(skeleton, '[^ \t\n\r%[%]{}:,"]+') do
    if token ~= 'true' and token ~= 'false' and token ~= 'null' and not is_number(token) then
      return string.format('%q, which is not JSON (JSON has no NaN, Infinity, hexadecimal, +1, 1., 01 '
        .. 'or number too large for a double)', string.sub(token, 1, 20))
    end
  end
  local separators = #string.gsub(skeleton, '[^:]+', '')  -- one per pair of an object
  if separators > 0 and type(value) == 'table' and separators > key_count(value) then
    return 'an object that repeats a key (a JSON object must not repeat a key)'
  end
  return nil
end

local function payload_error(payload, max_bytes)
  if type(payload) ~= 'string' then return 'the payload is missing' end
  if max_bytes == 0 then return nil end
  if #payload > max_bytes then
    return string.format('the payload is %d bytes; the limit is %d (MAX_PAYLOAD)', #payload, max_bytes)
  end
  -- Whether there is anything but printable ASCII (one anchored run): most payloads skip two checks.
  local special = not string.find(payload, '^[ -~]*$')
  if special and not is_utf8(payload) then return 'the payload is not valid UTF-8' end
  local ok, value = pcall(cjson.decode, payload)
  if not ok then return 'the payload is not JSON text: ' .. tostring(value) end
  local strict = strictness_error(payload, value, special)
  if strict then return 'the payload is not JSON text: it holds ' .. strict end
  return nil
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

-- The optional numbers ARGS[FIRST], ARGS[FIRST + 1]... called NAMES, each DEFAULTS[i] when absent or empty;
-- or nil and why one of them is not a non-negative number.
local function numbers(args, first, names, defaults)
  local out = {}
  for i, name in ipairs(names) do
    local value = args[first + i - 1]
    if value == nil or value == '' then
      out[i] = defaults[i]
    else
      local n = tonumber(value)
      if not n or n < 0 then return nil, name .. ' must be a non-negative number' end
      out[i] = math.floor(n)
    end
  end
  return out
end

-- The function that publishes with COMMAND: PUBLISH, or SPUBLISH for sharded pub/sub.
local function publisher(command)
  return function(keys, args)
    local channel, event, payload = args[1], args[2], args[3]
    local err, prefix = check_keys(keys, channel)
    if err then return fail(err) end
    err = name_error('event', event, MAX_EVENT_LENGTH, EVENT_RULE)
    if err then return fail(err) end
    local origin = args[4] or ''
    local id = args[5] or ''
    err = id_error('ORIGIN', origin) or id_error('ID', id)
    if err then return fail(err) end
    local n
    n, err = numbers(args, 6, {'SIZE', 'TTL', 'META_TTL', 'MAX_PAYLOAD'}, {1000, 600, 604800, MAX_PAYLOAD_BYTES})
    if not n then return fail(err) end
    local size, ttl, meta_ttl = n[1], n[2], n[3]
    err = payload_error(payload, n[4])
    if err then return fail(err) end
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
  if err then return fail(err) end
  local since = tonumber(args[2])
  if not since then return fail('SINCE must be a number (-1 for the position only)') end
  local n
  n, err = numbers(args, 3, {'LIMIT', 'TTL', 'META_TTL'}, {1000, 600, 604800})
  if not n then return fail(err) end
  local limit, ttl, meta_ttl = n[1], n[2], n[3]
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

local function version()
  return {
    'version', VERSION,
    'max_channel_length', MAX_CHANNEL_LENGTH,
    'max_event_length', MAX_EVENT_LENGTH,
    'max_id_length', MAX_ID_LENGTH,
    'max_payload_bytes', MAX_PAYLOAD_BYTES,
    'channel_rule', CHANNEL_RULE,
    'event_rule', EVENT_RULE,
  }
end

redis.register_function('broadcast_publish', publisher('PUBLISH'))
redis.register_function('broadcast_spublish', publisher('SPUBLISH'))
redis.register_function('broadcast_history', history)
redis.register_function{function_name = 'broadcast_version', callback = version, flags = {'no-writes'}}
