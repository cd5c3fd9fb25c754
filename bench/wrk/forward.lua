-- wrk script of bench/forward.sh: one res.partner create or write a request, sent to Odoo's JSON-2
-- directly or to the gateway's REST route, as the same Odoo user. Settings come from the
-- environment (one wrk run = one case):
--   FWD_TARGET  direct | gateway
--   FWD_OP      create | write
--   FWD_AUTH    the Authorization header value (bearer <Odoo API key> or Bearer <access token>)
--   FWD_DATABASE  X-Odoo-Database (optional)
--   FWD_IDS     comma-separated partner ids, one per wrk thread (write: each connection writes its
--               own record, so no two requests wait on one row lock)
--   FWD_IDEMPOTENCY  a run prefix: every request carries Idempotency-Key <prefix>-<thread>-<n>
--                    (unset: no header)
local target = os.getenv("FWD_TARGET")
local op = os.getenv("FWD_OP")
local auth = os.getenv("FWD_AUTH")
local database = os.getenv("FWD_DATABASE")
local idem = os.getenv("FWD_IDEMPOTENCY")
local ids = {}
for id in string.gmatch(os.getenv("FWD_IDS") or "", "%d+") do
    ids[#ids + 1] = id
end

local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

function init(args)
    n = 0
    record = ids[thread_no] or ids[1]
    headers = {["Authorization"] = auth, ["Content-Type"] = "application/json"}
    if database and database ~= "" then
        headers["X-Odoo-Database"] = database
    end
    local vals_create = '{"name": "Bench forward", "email": "bench.forward@example.com"}'
    local vals_write = '{"ref": "bench-forward"}'
    if target == "direct" then
        method = "POST"
        if op == "create" then
            path, body = "/json/2/res.partner/create", '{"vals_list": [' .. vals_create .. ']}'
        else
            path, body = "/json/2/res.partner/write", '{"ids": [' .. record .. '], "vals": ' .. vals_write .. '}'
        end
    else
        if op == "create" then
            method, path, body = "POST", "/api/v1/res.partner", vals_create
        else
            method, path, body = "PATCH", "/api/v1/res.partner/" .. record, vals_write
        end
    end
end

function request()
    n = n + 1
    if idem and idem ~= "" then
        headers["Idempotency-Key"] = idem .. "-" .. thread_no .. "-" .. n
    end
    return wrk.format(method, path, headers, body)
end
