
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'rtc' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'rtc'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'rtc' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a Pusher Channels (protocol 7) WebSocket server and the Pusher HTTP API on one port')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'Live dashboard of every node: connections against the planning line, pub/sub buffer, presence cost, auth rate, CPU, lag, drain state')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'The same figures once, as a table or --json; exits 1 when an alert fires')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'Drain one node (paced 4200 reconnect hints, then exit) and show its progress')
            [CompletionResult]::new('roll', 'roll', [CompletionResultType]::ParameterValue, 'Rolling restart of a cluster, one node at a time: capacity gate, drain, wait for it to come back serving, next')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure a Pusher-compatible server: connections, fan-out, presence, the mix')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions for rtc to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) for rtc or one of its subcommands to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rtc;serve' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'TOML config file (see rtc.example.toml) [default: ./rtc.toml when it exists]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML config file (see rtc.example.toml) [default: ./rtc.toml when it exists]')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on [default: 0.0.0.0, or 127.0.0.1 while the development app is served; Reverb: REVERB_SERVER_HOST]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on; 0 picks a free one [default: 8080; Reverb: REVERB_SERVER_PORT]')
            [CompletionResult]::new('--path', '--path', [CompletionResultType]::ParameterName, 'Path prefix of the WebSocket and HTTP API routes, e.g. /ws; health, /metrics and /admin stay at the root [default: none; Reverb: REVERB_SERVER_PATH]')
            [CompletionResult]::new('--max-request-size', '--max-request-size', [CompletionResultType]::ParameterName, 'Largest HTTP API request body in bytes [default: 262144; Reverb: REVERB_MAX_REQUEST_SIZE]')
            [CompletionResult]::new('--admin-token', '--admin-token', [CompletionResultType]::ParameterName, 'Token that admin endpoints (/admin/*, /metrics) require as `Authorization: Bearer`. When unset, a random one is generated and printed at start-up')
            [CompletionResult]::new('--node-id', '--node-id', [CompletionResultType]::ParameterName, 'This node''s id [default: derived from the hostname]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format [default: text]. Filter with RUST_LOG (e.g. RUST_LOG=rtc=debug)')
            [CompletionResult]::new('--outbound-queue-bytes', '--outbound-queue-bytes', [CompletionResultType]::ParameterName, 'Bytes queued for one socket before it is closed as a slow consumer (4100) [default: 1048576]')
            [CompletionResult]::new('--max-new-connections-per-sec', '--max-new-connections-per-sec', [CompletionResultType]::ParameterName, 'New WebSocket connections this node accepts per second; above it upgrades get 503 with Retry-After, so a reconnect storm cannot take the node down; 0 = no limit [default: 5000]')
            [CompletionResult]::new('--fanout-budget-ms', '--fanout-budget-ms', [CompletionResultType]::ParameterName, 'Fan-out budget in milliseconds: a broadcast''s fan-out time above it alerts in the console, and the measured line is the socket count a broadcast reaches within it [default: 50]')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'PEM certificate chain (leaf first): serve wss:// and https:// on the port; needs --tls-key [default: none, plain ws:// and http://]')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert; needs --tls-cert')
            [CompletionResult]::new('--header-timeout', '--header-timeout', [CompletionResultType]::ParameterName, 'Seconds a client has to send a complete request head after connecting or after its previous response (so also the keep-alive idle timeout) [default: 10]')
            [CompletionResult]::new('--body-timeout', '--body-timeout', [CompletionResultType]::ParameterName, 'Seconds a client has to send a whole request body after its head [default: 30]')
            [CompletionResult]::new('--connection-limit', '--connection-limit', [CompletionResultType]::ParameterName, 'Open connections (HTTP, WebSocket, TLS handshakes) this node holds; at the cap the oldest connection that has not sent a request is closed to make room, else the new one is; 0 = no cap [default: the open-file limit minus a reserve for health checks, admin and Redis]')
            [CompletionResult]::new('--max-connections-per-address', '--max-connections-per-address', [CompletionResultType]::ParameterName, 'Open connections per client address (the TCP peer; trusted proxies are exempt); 0 = no cap [default: 0]')
            [CompletionResult]::new('--max-new-connections-per-address-per-sec', '--max-new-connections-per-address-per-sec', [CompletionResultType]::ParameterName, 'New WebSocket connections per client address per second (behind a trusted proxy the address comes from X-Forwarded-For); 0 = no limit [default: 0]')
            [CompletionResult]::new('--trusted-proxies', '--trusted-proxies', [CompletionResultType]::ParameterName, 'Proxies (IP addresses or CIDR ranges, comma-separated) whose X-Forwarded-For is believed [default: none]')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Redis URL of the cluster''s pub/sub Redis; setting it switches cluster mode on [Reverb: REVERB_SCALING_ENABLED with REDIS_URL or REDIS_HOST/PORT/USERNAME/PASSWORD/DB]')
            [CompletionResult]::new('--bus', '--bus', [CompletionResultType]::ParameterName, 'The cluster''s engine, by URL; setting it switches cluster mode on: `redis://HOST:PORT` (one Redis, as --redis-url), `redis-cluster://HOST:PORT[,HOST:PORT…]` (a Redis Cluster: sharded pub/sub) or `nats://HOST:PORT` (NATS with JetStream)')
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'Cluster name: prefixes every Redis key and channel, so clusters can share a Redis [default: local; Reverb: REVERB_SCALING_CHANNEL]')
            [CompletionResult]::new('--advertise-url', '--advertise-url', [CompletionResultType]::ParameterName, 'URL at which the console and other nodes reach this node [default: http://HOST:PORT, with 127.0.0.1 for 0.0.0.0]')
            [CompletionResult]::new('--cluster-secret', '--cluster-secret', [CompletionResultType]::ParameterName, 'Shared secret of the cluster: every bus message carries an HMAC-SHA256 keyed by it, and messages without a valid one are dropped (counted as `unauthenticated`). Give every node the same value (at least 16 characters) [default: none: the bus trusts anyone who can publish to the cluster''s Redis]')
            [CompletionResult]::new('--planning-line', '--planning-line', [CompletionResultType]::ParameterName, 'Connections per node the cluster is planned for; the console and `rtc roll` warn and refuse against it [default: 12000]')
            [CompletionResult]::new('--pre-drain-delay', '--pre-drain-delay', [CompletionResultType]::ParameterName, 'Seconds between the health flip and the first reconnect hint, so the load balancer stops routing here first [default: 5]')
            [CompletionResult]::new('--drain-window', '--drain-window', [CompletionResultType]::ParameterName, 'Seconds over which reconnect hints (close 4200) are spread, in shuffled order [default: 15]')
            [CompletionResult]::new('--drain-rate', '--drain-rate', [CompletionResultType]::ParameterName, 'Most reconnect hints per second; 0 = only the window paces them [default: 0]')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'Seconds from the drain''s start after which whatever is left is closed and the process exits; keep it below the orchestrator''s kill timeout [default: 25]')
            [CompletionResult]::new('--drain-presence-grace', '--drain-presence-grace', [CompletionResultType]::ParameterName, 'Seconds a presence member who left a draining node is kept, so a client that reconnects to another node within it causes no member_removed/member_added flap [default: 10]')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'Id of the app defined by flags/env; with --app-key and --app-secret it replaces the development app [Reverb: REVERB_APP_ID]')
            [CompletionResult]::new('--app-key', '--app-key', [CompletionResultType]::ParameterName, 'Key of the flags/env app [Reverb: REVERB_APP_KEY]')
            [CompletionResult]::new('--app-secret', '--app-secret', [CompletionResultType]::ParameterName, 'Secret of the flags/env app [Reverb: REVERB_APP_SECRET]')
            [CompletionResult]::new('--activity-timeout', '--activity-timeout', [CompletionResultType]::ParameterName, 'Seconds of silence after which clients ping [default: 120; Reverb: REVERB_APP_ACTIVITY_TIMEOUT]')
            [CompletionResult]::new('--ping-interval', '--ping-interval', [CompletionResultType]::ParameterName, 'Seconds of silence after which the server pings a socket [default: the activity timeout + 30, so clients ping first; Reverb: REVERB_APP_PING_INTERVAL]')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Connection quota for the app, 0 = unlimited [Reverb: REVERB_APP_MAX_CONNECTIONS]')
            [CompletionResult]::new('--max-message-size', '--max-message-size', [CompletionResultType]::ParameterName, 'Largest WebSocket message from a client in bytes [default: 10000; Reverb: REVERB_APP_MAX_MESSAGE_SIZE]')
            [CompletionResult]::new('--client-events', '--client-events', [CompletionResultType]::ParameterName, 'Who may send client events [default: members; Reverb: REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM]')
            [CompletionResult]::new('--allowed-origins', '--allowed-origins', [CompletionResultType]::ParameterName, 'Allowed Origin headers, comma-separated; `*` wildcards [default: *]')
            [CompletionResult]::new('--subscription-count', '--subscription-count', [CompletionResultType]::ParameterName, 'Send pusher_internal:subscription_count to subscribers [default: false]')
            [CompletionResult]::new('--require-signin-within', '--require-signin-within', [CompletionResultType]::ParameterName, 'Close sockets (4009) that have not signed in or joined a private/presence channel within this many seconds; 0 = off [default: 0]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;top' {
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'The cluster''s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file holding the [clusters.NAME] tables')
            [CompletionResult]::new('--bus', '--bus', [CompletionResultType]::ParameterName, 'Read the node registry straight from the cluster''s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Read the node registry straight from this Redis (the cluster''s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A standalone node''s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin token sent as ''Authorization: Bearer'' to nodes'' /admin endpoints (overrides the cluster''s admin_token)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)')
            [CompletionResult]::new('--planning-line', '--planning-line', [CompletionResultType]::ParameterName, 'Connections per node to plan for (default: the cluster''s planning_line, else the node''s own, else 12000)')
            [CompletionResult]::new('--write', '--write', [CompletionResultType]::ParameterName, 'Allow actions that change the cluster (d: drain the selected node, after a confirmation showing the capacity check). Read-only without it')
            [CompletionResult]::new('--no-color', '--no-color', [CompletionResultType]::ParameterName, 'No colour (also when NO_COLOR is set). States keep their glyphs')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;status' {
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'The cluster''s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file holding the [clusters.NAME] tables')
            [CompletionResult]::new('--bus', '--bus', [CompletionResultType]::ParameterName, 'Read the node registry straight from the cluster''s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Read the node registry straight from this Redis (the cluster''s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A standalone node''s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin token sent as ''Authorization: Bearer'' to nodes'' /admin endpoints (overrides the cluster''s admin_token)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)')
            [CompletionResult]::new('--planning-line', '--planning-line', [CompletionResultType]::ParameterName, 'Connections per node to plan for (default: the cluster''s planning_line, else the node''s own, else 12000)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (stable snake_case keys) instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;drain' {
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'The cluster''s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file holding the [clusters.NAME] tables')
            [CompletionResult]::new('--bus', '--bus', [CompletionResultType]::ParameterName, 'Read the node registry straight from the cluster''s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Read the node registry straight from this Redis (the cluster''s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A standalone node''s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin token sent as ''Authorization: Bearer'' to nodes'' /admin endpoints (overrides the cluster''s admin_token)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)')
            [CompletionResult]::new('--planning-line', '--planning-line', [CompletionResultType]::ParameterName, 'Connections per node to plan for (default: the cluster''s planning_line, else the node''s own, else 12000)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up waiting after this many seconds (exit 1); the drain itself goes on [default: the node''s drain timeout plus 15 s]')
            [CompletionResult]::new('--window', '--window', [CompletionResultType]::ParameterName, 'Spread the reconnect hints over this many seconds (overrides the node''s window)')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'At most this many reconnect hints per second (overrides the node''s rate)')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Start the drain and return at once')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Drain even when the capacity check fails (survivors over the planning line, or the last serving node)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the capacity check and stop (exit 0 when the drain would go ahead, 3 when it would be refused)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;roll' {
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'The cluster''s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file holding the [clusters.NAME] tables')
            [CompletionResult]::new('--bus', '--bus', [CompletionResultType]::ParameterName, 'Read the node registry straight from the cluster''s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)')
            [CompletionResult]::new('--redis-url', '--redis-url', [CompletionResultType]::ParameterName, 'Read the node registry straight from this Redis (the cluster''s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'A standalone node''s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Admin token sent as ''Authorization: Bearer'' to nodes'' /admin endpoints (overrides the cluster''s admin_token)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)')
            [CompletionResult]::new('--planning-line', '--planning-line', [CompletionResultType]::ParameterName, 'Connections per node to plan for (default: the cluster''s planning_line, else the node''s own, else 12000)')
            [CompletionResult]::new('--order', '--order', [CompletionResultType]::ParameterName, 'Node ids in the order to roll them, comma-separated [default: registry order]')
            [CompletionResult]::new('--exec', '--exec', [CompletionResultType]::ParameterName, 'Command that restarts a node, `{node}` replaced by its id (e.g. ''systemctl restart rtc@{node}''); it must stop the node with SIGTERM (the paced drain). It runs without a shell: the template is split into words once (quotes as in sh), then `{node}` is replaced inside each word, so an id can never add arguments or commands. Only trusted registry entries are restarted. Without it, rtc asks the node to drain and expects a supervisor to start it again')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for one node to drain and come back')
            [CompletionResult]::new('--settle', '--settle', [CompletionResultType]::ParameterName, 'Seconds a restarted node must stay serving before the next step')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Start at this node (skip the ones before it in the order)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan with the headroom arithmetic of every step and change nothing')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Roll even when a step would put survivors past the planning line')
            [CompletionResult]::new('--resume', '--resume', [CompletionResultType]::ParameterName, 'Continue the interrupted roll recorded on the cluster''s engine')
            [CompletionResult]::new('--no-cordon', '--no-cordon', [CompletionResultType]::ParameterName, 'Never cordon the nodes not yet rolled')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'NDJSON events on stdout instead of lines')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;bench' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'App id, for the HTTP API (`/apps/{id}/events`)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'App key, for WebSocket URLs and signatures')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m')
            [CompletionResult]::new('--hold', '--hold', [CompletionResultType]::ParameterName, 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Connection ramp: new sockets per second')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on one socket''s connect + handshake + subscriptions after this long')
            [CompletionResult]::new('--server-pid', '--server-pid', [CompletionResultType]::ParameterName, 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported')
            [CompletionResult]::new('--source-addrs', '--source-addrs', [CompletionResultType]::ParameterName, 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)')
            [CompletionResult]::new('--stats-token', '--stats-token', [CompletionResultType]::ParameterName, 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only')
            [CompletionResult]::new('--save', '--save', [CompletionResultType]::ParameterName, 'Also write the JSON report to this file')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('connections', 'connections', [CompletionResultType]::ParameterValue, 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server''s RSS per socket and idle CPU')
            [CompletionResult]::new('fanout', 'fanout', [CompletionResultType]::ParameterValue, 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost')
            [CompletionResult]::new('presence', 'presence', [CompletionResultType]::ParameterValue, 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency')
            [CompletionResult]::new('mixed', 'mixed', [CompletionResultType]::ParameterValue, 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rtc;bench;connections' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Sockets to open (the file limit here allows ~19,000)')
            [CompletionResult]::new('--sockets', '--sockets', [CompletionResultType]::ParameterName, 'Sockets to open (the file limit here allows ~19,000)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Channels to spread the sockets over (socket i joins channel i mod C); 0 = none')
            [CompletionResult]::new('--channels', '--channels', [CompletionResultType]::ParameterName, 'Channels to spread the sockets over (socket i joins channel i mod C); 0 = none')
            [CompletionResult]::new('--channel-kind', '--channel-kind', [CompletionResultType]::ParameterName, 'Type of those channels')
            [CompletionResult]::new('--activity-timeout', '--activity-timeout', [CompletionResultType]::ParameterName, 'The client''s own activity timeout (pusher-js `activityTimeout`): after the smaller of this and the server''s advertised one without a message, a socket sends `pusher:ping`. 0 = never ping. Units: ms, s (default), m')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'App id, for the HTTP API (`/apps/{id}/events`)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'App key, for WebSocket URLs and signatures')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m')
            [CompletionResult]::new('--hold', '--hold', [CompletionResultType]::ParameterName, 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Connection ramp: new sockets per second')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on one socket''s connect + handshake + subscriptions after this long')
            [CompletionResult]::new('--server-pid', '--server-pid', [CompletionResultType]::ParameterName, 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported')
            [CompletionResult]::new('--source-addrs', '--source-addrs', [CompletionResultType]::ParameterName, 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)')
            [CompletionResult]::new('--stats-token', '--stats-token', [CompletionResultType]::ParameterName, 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only')
            [CompletionResult]::new('--save', '--save', [CompletionResultType]::ParameterName, 'Also write the JSON report to this file')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;bench;fanout' {
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Subscribers of the channel')
            [CompletionResult]::new('--subscribers', '--subscribers', [CompletionResultType]::ParameterName, 'Subscribers of the channel')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Events published per second, one HTTP request each')
            [CompletionResult]::new('--events-per-sec', '--events-per-sec', [CompletionResultType]::ParameterName, 'Events published per second, one HTTP request each')
            [CompletionResult]::new('--channel-kind', '--channel-kind', [CompletionResultType]::ParameterName, 'Type of the channel (presence: every subscriber is a member, within the server''s member limit)')
            [CompletionResult]::new('--payload', '--payload', [CompletionResultType]::ParameterName, 'Bytes of event data (at least the ~20-byte timestamp header)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'App id, for the HTTP API (`/apps/{id}/events`)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'App key, for WebSocket URLs and signatures')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m')
            [CompletionResult]::new('--hold', '--hold', [CompletionResultType]::ParameterName, 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Connection ramp: new sockets per second')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on one socket''s connect + handshake + subscriptions after this long')
            [CompletionResult]::new('--server-pid', '--server-pid', [CompletionResultType]::ParameterName, 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported')
            [CompletionResult]::new('--source-addrs', '--source-addrs', [CompletionResultType]::ParameterName, 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)')
            [CompletionResult]::new('--stats-token', '--stats-token', [CompletionResultType]::ParameterName, 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only')
            [CompletionResult]::new('--save', '--save', [CompletionResultType]::ParameterName, 'Also write the JSON report to this file')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;bench;presence' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Members of the presence channel (the server''s `max_presence_members` must allow them plus the spares, 2 × churn)')
            [CompletionResult]::new('--members', '--members', [CompletionResultType]::ParameterName, 'Members of the presence channel (the server''s `max_presence_members` must allow them plus the spares, 2 × churn)')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Joins per second, and as many leaves per second')
            [CompletionResult]::new('--churn', '--churn', [CompletionResultType]::ParameterName, 'Joins per second, and as many leaves per second')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'App id, for the HTTP API (`/apps/{id}/events`)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'App key, for WebSocket URLs and signatures')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m')
            [CompletionResult]::new('--hold', '--hold', [CompletionResultType]::ParameterName, 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Connection ramp: new sockets per second')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on one socket''s connect + handshake + subscriptions after this long')
            [CompletionResult]::new('--server-pid', '--server-pid', [CompletionResultType]::ParameterName, 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported')
            [CompletionResult]::new('--source-addrs', '--source-addrs', [CompletionResultType]::ParameterName, 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)')
            [CompletionResult]::new('--stats-token', '--stats-token', [CompletionResultType]::ParameterName, 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only')
            [CompletionResult]::new('--save', '--save', [CompletionResultType]::ParameterName, 'Also write the JSON report to this file')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;bench;mixed' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Sockets in all; each joins one private channel')
            [CompletionResult]::new('--sockets', '--sockets', [CompletionResultType]::ParameterName, 'Sockets in all; each joins one private channel')
            [CompletionResult]::new('-g', '-g', [CompletionResultType]::ParameterName, 'Subscribers per private channel (channels = sockets / group, rounded up)')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'Subscribers per private channel (channels = sockets / group, rounded up)')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Events per second, spread round-robin over the private channels')
            [CompletionResult]::new('--events-per-sec', '--events-per-sec', [CompletionResultType]::ParameterName, 'Events per second, spread round-robin over the private channels')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Members of the presence channel (taken from the sockets; 0 = no presence channel)')
            [CompletionResult]::new('--members', '--members', [CompletionResultType]::ParameterName, 'Members of the presence channel (taken from the sockets; 0 = no presence channel)')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Presence joins per second, and as many leaves per second')
            [CompletionResult]::new('--churn', '--churn', [CompletionResultType]::ParameterName, 'Presence joins per second, and as many leaves per second')
            [CompletionResult]::new('--payload', '--payload', [CompletionResultType]::ParameterName, 'Bytes of event data (at least the ~20-byte timestamp header)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'App id, for the HTTP API (`/apps/{id}/events`)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'App key, for WebSocket URLs and signatures')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m')
            [CompletionResult]::new('--hold', '--hold', [CompletionResultType]::ParameterName, 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Connection ramp: new sockets per second')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on one socket''s connect + handshake + subscriptions after this long')
            [CompletionResult]::new('--server-pid', '--server-pid', [CompletionResultType]::ParameterName, 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported')
            [CompletionResult]::new('--source-addrs', '--source-addrs', [CompletionResultType]::ParameterName, 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)')
            [CompletionResult]::new('--stats-token', '--stats-token', [CompletionResultType]::ParameterName, 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only')
            [CompletionResult]::new('--save', '--save', [CompletionResultType]::ParameterName, 'Also write the JSON report to this file')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;bench;drain' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Sockets to open on node A (--url) before the drain (≤ ~18,000 per generator process under a 20,000 open-file limit)')
            [CompletionResult]::new('--sockets', '--sockets', [CompletionResultType]::ParameterName, 'Sockets to open on node A (--url) before the drain (≤ ~18,000 per generator process under a 20,000 open-file limit)')
            [CompletionResult]::new('--survivor', '--survivor', [CompletionResultType]::ParameterName, 'Another node of the cluster (ws://HOST:PORT): drained sockets reconnect to the survivors round-robin, as a load balancer would. Repeat for each survivor')
            [CompletionResult]::new('--drain-with', '--drain-with', [CompletionResultType]::ParameterName, 'How node A is made to shed its sockets')
            [CompletionResult]::new('--admin-token', '--admin-token', [CompletionResultType]::ParameterName, 'Admin token of node A, for --drain-with admin')
            [CompletionResult]::new('--window', '--window', [CompletionResultType]::ParameterName, 'Window over which node A spreads its reconnect hints (`window_secs` of the drain request; --drain-with admin only) [default: the node''s --drain-window]. Units: ms, s (default), m')
            [CompletionResult]::new('--pre-delay', '--pre-delay', [CompletionResultType]::ParameterName, 'Wait between the health flip and the first hint (`pre_delay_secs`; --drain-with admin only) [default: the node''s --pre-drain-delay]. Units: ms, s (default), m')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Private channels each socket joins, signed, and joins again after every reconnect (typical apps use 2–3 per connection): the auth-request rate follows')
            [CompletionResult]::new('--channels-per-socket', '--channels-per-socket', [CompletionResultType]::ParameterName, 'Private channels each socket joins, signed, and joins again after every reconnect (typical apps use 2–3 per connection): the auth-request rate follows')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'App id, for the HTTP API (`/apps/{id}/events`)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'App key, for WebSocket URLs and signatures')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m')
            [CompletionResult]::new('--hold', '--hold', [CompletionResultType]::ParameterName, 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Connection ramp: new sockets per second')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on one socket''s connect + handshake + subscriptions after this long')
            [CompletionResult]::new('--server-pid', '--server-pid', [CompletionResultType]::ParameterName, 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported')
            [CompletionResult]::new('--source-addrs', '--source-addrs', [CompletionResultType]::ParameterName, 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)')
            [CompletionResult]::new('--stats-token', '--stats-token', [CompletionResultType]::ParameterName, 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only')
            [CompletionResult]::new('--save', '--save', [CompletionResultType]::ParameterName, 'Also write the JSON report to this file')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON on stdout instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;bench;help' {
            [CompletionResult]::new('connections', 'connections', [CompletionResultType]::ParameterValue, 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server''s RSS per socket and idle CPU')
            [CompletionResult]::new('fanout', 'fanout', [CompletionResultType]::ParameterValue, 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost')
            [CompletionResult]::new('presence', 'presence', [CompletionResultType]::ParameterValue, 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency')
            [CompletionResult]::new('mixed', 'mixed', [CompletionResultType]::ParameterValue, 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rtc;bench;help;connections' {
            break
        }
        'rtc;bench;help;fanout' {
            break
        }
        'rtc;bench;help;presence' {
            break
        }
        'rtc;bench;help;mixed' {
            break
        }
        'rtc;bench;help;drain' {
            break
        }
        'rtc;bench;help;help' {
            break
        }
        'rtc;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;man' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rtc;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a Pusher Channels (protocol 7) WebSocket server and the Pusher HTTP API on one port')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'Live dashboard of every node: connections against the planning line, pub/sub buffer, presence cost, auth rate, CPU, lag, drain state')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'The same figures once, as a table or --json; exits 1 when an alert fires')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'Drain one node (paced 4200 reconnect hints, then exit) and show its progress')
            [CompletionResult]::new('roll', 'roll', [CompletionResultType]::ParameterValue, 'Rolling restart of a cluster, one node at a time: capacity gate, drain, wait for it to come back serving, next')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure a Pusher-compatible server: connections, fan-out, presence, the mix')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions for rtc to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) for rtc or one of its subcommands to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rtc;help;serve' {
            break
        }
        'rtc;help;top' {
            break
        }
        'rtc;help;status' {
            break
        }
        'rtc;help;drain' {
            break
        }
        'rtc;help;roll' {
            break
        }
        'rtc;help;bench' {
            [CompletionResult]::new('connections', 'connections', [CompletionResultType]::ParameterValue, 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server''s RSS per socket and idle CPU')
            [CompletionResult]::new('fanout', 'fanout', [CompletionResultType]::ParameterValue, 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost')
            [CompletionResult]::new('presence', 'presence', [CompletionResultType]::ParameterValue, 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency')
            [CompletionResult]::new('mixed', 'mixed', [CompletionResultType]::ParameterValue, 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios')
            [CompletionResult]::new('drain', 'drain', [CompletionResultType]::ParameterValue, 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced')
            break
        }
        'rtc;help;bench;connections' {
            break
        }
        'rtc;help;bench;fanout' {
            break
        }
        'rtc;help;bench;presence' {
            break
        }
        'rtc;help;bench;mixed' {
            break
        }
        'rtc;help;bench;drain' {
            break
        }
        'rtc;help;completions' {
            break
        }
        'rtc;help;man' {
            break
        }
        'rtc;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
