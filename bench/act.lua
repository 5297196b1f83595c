-- wrk script: POST /act with a 10-action body, a new session every 20 requests.
-- Usage: wrk -t2 -c16 -d20s -s bench/act.lua http://127.0.0.1:8080
local counter = 0
local actions = {}
for i = 1, 10 do
  actions[#actions + 1] = string.format('"click[product %d red cotton shirt size m]"', i)
end
local obs = string.rep("results page: red cotton shirt for men, machine wash, size m. ", 8)

request = function()
  counter = counter + 1
  local session = string.format("wrk-%d-%d", math.random(1, 1000000000), math.floor(counter / 20))
  local body = string.format(
    '{"session_id":"%s","instruction":"i want a red cotton shirt in size m","observation":"%s","available_actions":[%s]}',
    session, obs, table.concat(actions, ","))
  return wrk.format("POST", "/act", { ["Content-Type"] = "application/json" }, body)
end
