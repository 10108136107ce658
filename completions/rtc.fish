# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rtc_global_optspecs
    string join \n h/help V/version
end

function __fish_rtc_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rtc_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rtc_using_subcommand
    set -l cmd (__fish_rtc_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rtc -n "__fish_rtc_needs_command" -s h -l help -d 'Print help'
complete -c rtc -n "__fish_rtc_needs_command" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "serve" -d 'Run a Pusher Channels (protocol 7) WebSocket server and the Pusher HTTP API on one port'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "top" -d 'Live dashboard of every node: connections against the planning line, pub/sub buffer, presence cost, auth rate, CPU, lag, drain state'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "status" -d 'The same figures once, as a table or --json; exits 1 when an alert fires'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "drain" -d 'Drain one node (paced 4200 reconnect hints, then exit) and show its progress'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "roll" -d 'Rolling restart of a cluster, one node at a time: capacity gate, drain, wait for it to come back serving, next'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "bench" -d 'Measure a Pusher-compatible server: connections, fan-out, presence, the mix'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "completions" -d 'Print shell completions for rtc to stdout'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "man" -d 'Print the man page (roff) for rtc or one of its subcommands to stdout'
complete -c rtc -n "__fish_rtc_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rtc -n "__fish_rtc_using_subcommand serve" -s c -l config -d 'TOML config file (see rtc.example.toml) [default: ./rtc.toml when it exists]' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l host -d 'Address to listen on [default: 0.0.0.0, or 127.0.0.1 while the development app is served; Reverb: REVERB_SERVER_HOST]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l port -d 'Port to listen on; 0 picks a free one [default: 8080; Reverb: REVERB_SERVER_PORT]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l path -d 'Path prefix of the WebSocket and HTTP API routes, e.g. /ws; health, /metrics and /admin stay at the root [default: none; Reverb: REVERB_SERVER_PATH]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l max-request-size -d 'Largest HTTP API request body in bytes [default: 262144; Reverb: REVERB_MAX_REQUEST_SIZE]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l admin-token -d 'Token that admin endpoints (/admin/*, /metrics) require as `Authorization: Bearer`. When unset, a random one is generated and printed at start-up' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l node-id -d 'This node\'s id [default: derived from the hostname]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l log-format -d 'Log format [default: text]. Filter with RUST_LOG (e.g. RUST_LOG=rtc=debug)' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line'"
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l outbound-queue-bytes -d 'Bytes queued for one socket before it is closed as a slow consumer (4100) [default: 1048576]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l max-new-connections-per-sec -d 'New WebSocket connections this node accepts per second; above it upgrades get 503 with Retry-After, so a reconnect storm cannot take the node down; 0 = no limit [default: 5000]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l fanout-budget-ms -d 'Fan-out budget in milliseconds: a broadcast\'s fan-out time above it alerts in the console, and the measured line is the socket count a broadcast reaches within it [default: 50]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l tls-cert -d 'PEM certificate chain (leaf first): serve wss:// and https:// on the port; needs --tls-key [default: none, plain ws:// and http://]' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l tls-key -d 'PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert; needs --tls-cert' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l header-timeout -d 'Seconds a client has to send a complete request head after connecting or after its previous response (so also the keep-alive idle timeout) [default: 10]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l body-timeout -d 'Seconds a client has to send a whole request body after its head [default: 30]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l connection-limit -d 'Open connections (HTTP, WebSocket, TLS handshakes) this node holds; at the cap the oldest connection that has not sent a request is closed to make room, else the new one is; 0 = no cap [default: the open-file limit minus a reserve for health checks, admin and Redis]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l max-connections-per-address -d 'Open connections per client address (the TCP peer; trusted proxies are exempt); 0 = no cap [default: 0]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l max-new-connections-per-address-per-sec -d 'New WebSocket connections per client address per second (behind a trusted proxy the address comes from X-Forwarded-For); 0 = no limit [default: 0]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l trusted-proxies -d 'Proxies (IP addresses or CIDR ranges, comma-separated) whose X-Forwarded-For is believed [default: none]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l redis-url -d 'Redis URL of the cluster\'s pub/sub Redis; setting it switches cluster mode on [Reverb: REVERB_SCALING_ENABLED with REDIS_URL or REDIS_HOST/PORT/USERNAME/PASSWORD/DB]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l bus -d 'The cluster\'s engine, by URL; setting it switches cluster mode on: `redis://HOST:PORT` (one Redis, as --redis-url), `redis-cluster://HOST:PORT[,HOST:PORT…]` (a Redis Cluster: sharded pub/sub) or `nats://HOST:PORT` (NATS with JetStream)' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l cluster -d 'Cluster name: prefixes every Redis key and channel, so clusters can share a Redis [default: local; Reverb: REVERB_SCALING_CHANNEL]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l advertise-url -d 'URL at which the console and other nodes reach this node [default: http://HOST:PORT, with 127.0.0.1 for 0.0.0.0]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l cluster-secret -d 'Shared secret of the cluster: every bus message carries an HMAC-SHA256 keyed by it, and messages without a valid one are dropped (counted as `unauthenticated`). Give every node the same value (at least 16 characters) [default: none: the bus trusts anyone who can publish to the cluster\'s Redis]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l planning-line -d 'Connections per node the cluster is planned for; the console and `rtc roll` warn and refuse against it [default: 12000]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l pre-drain-delay -d 'Seconds between the health flip and the first reconnect hint, so the load balancer stops routing here first [default: 5]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l drain-window -d 'Seconds over which reconnect hints (close 4200) are spread, in shuffled order [default: 15]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l drain-rate -d 'Most reconnect hints per second; 0 = only the window paces them [default: 0]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l drain-timeout -d 'Seconds from the drain\'s start after which whatever is left is closed and the process exits; keep it below the orchestrator\'s kill timeout [default: 25]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l drain-presence-grace -d 'Seconds a presence member who left a draining node is kept, so a client that reconnects to another node within it causes no member_removed/member_added flap [default: 10]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l app-id -d 'Id of the app defined by flags/env; with --app-key and --app-secret it replaces the development app [Reverb: REVERB_APP_ID]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l app-key -d 'Key of the flags/env app [Reverb: REVERB_APP_KEY]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l app-secret -d 'Secret of the flags/env app [Reverb: REVERB_APP_SECRET]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l activity-timeout -d 'Seconds of silence after which clients ping [default: 120; Reverb: REVERB_APP_ACTIVITY_TIMEOUT]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l ping-interval -d 'Seconds of silence after which the server pings a socket [default: the activity timeout + 30, so clients ping first; Reverb: REVERB_APP_PING_INTERVAL]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l max-connections -d 'Connection quota for the app, 0 = unlimited [Reverb: REVERB_APP_MAX_CONNECTIONS]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l max-message-size -d 'Largest WebSocket message from a client in bytes [default: 10000; Reverb: REVERB_APP_MAX_MESSAGE_SIZE]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l client-events -d 'Who may send client events [default: members; Reverb: REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM]' -r -f -a "members\t'Sockets subscribed to the channel (the default, as in Reverb and Pusher)'
all\t'Any socket of the app, subscribed or not'
off\t'Nobody: client events are refused with `pusher:error` 4301'"
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l allowed-origins -d 'Allowed Origin headers, comma-separated; `*` wildcards [default: *]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l subscription-count -d 'Send pusher_internal:subscription_count to subscribers [default: false]' -r -f -a "true\t''
false\t''"
complete -c rtc -n "__fish_rtc_using_subcommand serve" -l require-signin-within -d 'Close sockets (4009) that have not signed in or joined a private/presence channel within this many seconds; 0 = off [default: 0]' -r
complete -c rtc -n "__fish_rtc_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtc -n "__fish_rtc_using_subcommand serve" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand top" -l cluster -d 'The cluster\'s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]' -r
complete -c rtc -n "__fish_rtc_using_subcommand top" -l config -d 'Config file holding the [clusters.NAME] tables' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand top" -l bus -d 'Read the node registry straight from the cluster\'s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)' -r
complete -c rtc -n "__fish_rtc_using_subcommand top" -l redis-url -d 'Read the node registry straight from this Redis (the cluster\'s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL' -r
complete -c rtc -n "__fish_rtc_using_subcommand top" -l node -d 'A standalone node\'s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed' -r
complete -c rtc -n "__fish_rtc_using_subcommand top" -l token -d 'Admin token sent as \'Authorization: Bearer\' to nodes\' /admin endpoints (overrides the cluster\'s admin_token)' -r
complete -c rtc -n "__fish_rtc_using_subcommand top" -l interval -d 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)' -r
complete -c rtc -n "__fish_rtc_using_subcommand top" -l planning-line -d 'Connections per node to plan for (default: the cluster\'s planning_line, else the node\'s own, else 12000)' -r
complete -c rtc -n "__fish_rtc_using_subcommand top" -l write -d 'Allow actions that change the cluster (d: drain the selected node, after a confirmation showing the capacity check). Read-only without it'
complete -c rtc -n "__fish_rtc_using_subcommand top" -l no-color -d 'No colour (also when NO_COLOR is set). States keep their glyphs'
complete -c rtc -n "__fish_rtc_using_subcommand top" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtc -n "__fish_rtc_using_subcommand top" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand status" -l cluster -d 'The cluster\'s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]' -r
complete -c rtc -n "__fish_rtc_using_subcommand status" -l config -d 'Config file holding the [clusters.NAME] tables' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand status" -l bus -d 'Read the node registry straight from the cluster\'s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)' -r
complete -c rtc -n "__fish_rtc_using_subcommand status" -l redis-url -d 'Read the node registry straight from this Redis (the cluster\'s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL' -r
complete -c rtc -n "__fish_rtc_using_subcommand status" -l node -d 'A standalone node\'s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed' -r
complete -c rtc -n "__fish_rtc_using_subcommand status" -l token -d 'Admin token sent as \'Authorization: Bearer\' to nodes\' /admin endpoints (overrides the cluster\'s admin_token)' -r
complete -c rtc -n "__fish_rtc_using_subcommand status" -l interval -d 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)' -r
complete -c rtc -n "__fish_rtc_using_subcommand status" -l planning-line -d 'Connections per node to plan for (default: the cluster\'s planning_line, else the node\'s own, else 12000)' -r
complete -c rtc -n "__fish_rtc_using_subcommand status" -l json -d 'Print JSON (stable snake_case keys) instead of a table'
complete -c rtc -n "__fish_rtc_using_subcommand status" -s h -l help -d 'Print help'
complete -c rtc -n "__fish_rtc_using_subcommand status" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l cluster -d 'The cluster\'s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l config -d 'Config file holding the [clusters.NAME] tables' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l bus -d 'Read the node registry straight from the cluster\'s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l redis-url -d 'Read the node registry straight from this Redis (the cluster\'s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l node -d 'A standalone node\'s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l token -d 'Admin token sent as \'Authorization: Bearer\' to nodes\' /admin endpoints (overrides the cluster\'s admin_token)' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l interval -d 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l planning-line -d 'Connections per node to plan for (default: the cluster\'s planning_line, else the node\'s own, else 12000)' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l timeout -d 'Give up waiting after this many seconds (exit 1); the drain itself goes on [default: the node\'s drain timeout plus 15 s]' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l window -d 'Spread the reconnect hints over this many seconds (overrides the node\'s window)' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l rate -d 'At most this many reconnect hints per second (overrides the node\'s rate)' -r
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l no-wait -d 'Start the drain and return at once'
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l force -d 'Drain even when the capacity check fails (survivors over the planning line, or the last serving node)'
complete -c rtc -n "__fish_rtc_using_subcommand drain" -l dry-run -d 'Show the capacity check and stop (exit 0 when the drain would go ahead, 3 when it would be refused)'
complete -c rtc -n "__fish_rtc_using_subcommand drain" -s h -l help -d 'Print help'
complete -c rtc -n "__fish_rtc_using_subcommand drain" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l cluster -d 'The cluster\'s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l config -d 'Config file holding the [clusters.NAME] tables' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l bus -d 'Read the node registry straight from the cluster\'s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l redis-url -d 'Read the node registry straight from this Redis (the cluster\'s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l node -d 'A standalone node\'s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l token -d 'Admin token sent as \'Authorization: Bearer\' to nodes\' /admin endpoints (overrides the cluster\'s admin_token)' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l interval -d 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l planning-line -d 'Connections per node to plan for (default: the cluster\'s planning_line, else the node\'s own, else 12000)' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l order -d 'Node ids in the order to roll them, comma-separated [default: registry order]' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l exec -d 'Command that restarts a node, `{node}` replaced by its id (e.g. \'systemctl restart rtc@{node}\'); it must stop the node with SIGTERM (the paced drain). It runs without a shell: the template is split into words once (quotes as in sh), then `{node}` is replaced inside each word, so an id can never add arguments or commands. Only trusted registry entries are restarted. Without it, rtc asks the node to drain and expects a supervisor to start it again' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l timeout -d 'Seconds to wait for one node to drain and come back' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l settle -d 'Seconds a restarted node must stay serving before the next step' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l from -d 'Start at this node (skip the ones before it in the order)' -r
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l dry-run -d 'Print the plan with the headroom arithmetic of every step and change nothing'
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l force -d 'Roll even when a step would put survivors past the planning line'
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l resume -d 'Continue the interrupted roll recorded on the cluster\'s engine'
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l no-cordon -d 'Never cordon the nodes not yet rolled'
complete -c rtc -n "__fish_rtc_using_subcommand roll" -l json -d 'NDJSON events on stdout instead of lines'
complete -c rtc -n "__fish_rtc_using_subcommand roll" -s h -l help -d 'Print help'
complete -c rtc -n "__fish_rtc_using_subcommand roll" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l url -d 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l app-id -d 'App id, for the HTTP API (`/apps/{id}/events`)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l key -d 'App key, for WebSocket URLs and signatures' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l secret -d 'App secret: signs private/presence subscriptions and HTTP API requests, as the app\'s backend would. Never printed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l duration -d 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l hold -d 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l rate -d 'Connection ramp: new sockets per second' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l connect-timeout -d 'Give up on one socket\'s connect + handshake + subscriptions after this long' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l server-pid -d 'The server\'s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A\'s process, signalled by --drain-with signal|kill, whose exit time is reported' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l source-addrs -d 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l stats-token -d 'The server\'s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator\'s. Without it the report has the client-side figures only' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l save -d 'Also write the JSON report to this file' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -l json -d 'Print the report as JSON on stdout instead of a table'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -f -a "connections" -d 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server\'s RSS per socket and idle CPU'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -f -a "fanout" -d 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -f -a "presence" -d 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -f -a "mixed" -d 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -f -a "drain" -d 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and not __fish_seen_subcommand_from connections fanout presence mixed drain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -s n -l sockets -d 'Sockets to open (the file limit here allows ~19,000)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -s c -l channels -d 'Channels to spread the sockets over (socket i joins channel i mod C); 0 = none' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l channel-kind -d 'Type of those channels' -r -f -a "public\t'`bench-*`: no signature'
private\t'`private-bench-*`: signed with the app secret'
presence\t'`presence-bench-*`: signed, with one user per socket'"
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l activity-timeout -d 'The client\'s own activity timeout (pusher-js `activityTimeout`): after the smaller of this and the server\'s advertised one without a message, a socket sends `pusher:ping`. 0 = never ping. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l url -d 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l app-id -d 'App id, for the HTTP API (`/apps/{id}/events`)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l key -d 'App key, for WebSocket URLs and signatures' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l secret -d 'App secret: signs private/presence subscriptions and HTTP API requests, as the app\'s backend would. Never printed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l duration -d 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l hold -d 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l rate -d 'Connection ramp: new sockets per second' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l connect-timeout -d 'Give up on one socket\'s connect + handshake + subscriptions after this long' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l server-pid -d 'The server\'s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A\'s process, signalled by --drain-with signal|kill, whose exit time is reported' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l source-addrs -d 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l stats-token -d 'The server\'s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator\'s. Without it the report has the client-side figures only' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l save -d 'Also write the JSON report to this file' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -l json -d 'Print the report as JSON on stdout instead of a table'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from connections" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -s s -l subscribers -d 'Subscribers of the channel' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -s b -l events-per-sec -d 'Events published per second, one HTTP request each' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l channel-kind -d 'Type of the channel (presence: every subscriber is a member, within the server\'s member limit)' -r -f -a "public\t'`bench-*`: no signature'
private\t'`private-bench-*`: signed with the app secret'
presence\t'`presence-bench-*`: signed, with one user per socket'"
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l payload -d 'Bytes of event data (at least the ~20-byte timestamp header)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l url -d 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l app-id -d 'App id, for the HTTP API (`/apps/{id}/events`)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l key -d 'App key, for WebSocket URLs and signatures' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l secret -d 'App secret: signs private/presence subscriptions and HTTP API requests, as the app\'s backend would. Never printed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l duration -d 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l hold -d 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l rate -d 'Connection ramp: new sockets per second' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l connect-timeout -d 'Give up on one socket\'s connect + handshake + subscriptions after this long' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l server-pid -d 'The server\'s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A\'s process, signalled by --drain-with signal|kill, whose exit time is reported' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l source-addrs -d 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l stats-token -d 'The server\'s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator\'s. Without it the report has the client-side figures only' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l save -d 'Also write the JSON report to this file' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -l json -d 'Print the report as JSON on stdout instead of a table'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from fanout" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -s m -l members -d 'Members of the presence channel (the server\'s `max_presence_members` must allow them plus the spares, 2 × churn)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -s j -l churn -d 'Joins per second, and as many leaves per second' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l url -d 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l app-id -d 'App id, for the HTTP API (`/apps/{id}/events`)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l key -d 'App key, for WebSocket URLs and signatures' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l secret -d 'App secret: signs private/presence subscriptions and HTTP API requests, as the app\'s backend would. Never printed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l duration -d 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l hold -d 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l rate -d 'Connection ramp: new sockets per second' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l connect-timeout -d 'Give up on one socket\'s connect + handshake + subscriptions after this long' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l server-pid -d 'The server\'s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A\'s process, signalled by --drain-with signal|kill, whose exit time is reported' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l source-addrs -d 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l stats-token -d 'The server\'s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator\'s. Without it the report has the client-side figures only' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l save -d 'Also write the JSON report to this file' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -l json -d 'Print the report as JSON on stdout instead of a table'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -s h -l help -d 'Print help'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from presence" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -s n -l sockets -d 'Sockets in all; each joins one private channel' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -s g -l group -d 'Subscribers per private channel (channels = sockets / group, rounded up)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -s e -l events-per-sec -d 'Events per second, spread round-robin over the private channels' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -s m -l members -d 'Members of the presence channel (taken from the sockets; 0 = no presence channel)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -s j -l churn -d 'Presence joins per second, and as many leaves per second' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l payload -d 'Bytes of event data (at least the ~20-byte timestamp header)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l url -d 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l app-id -d 'App id, for the HTTP API (`/apps/{id}/events`)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l key -d 'App key, for WebSocket URLs and signatures' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l secret -d 'App secret: signs private/presence subscriptions and HTTP API requests, as the app\'s backend would. Never printed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l duration -d 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l hold -d 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l rate -d 'Connection ramp: new sockets per second' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l connect-timeout -d 'Give up on one socket\'s connect + handshake + subscriptions after this long' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l server-pid -d 'The server\'s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A\'s process, signalled by --drain-with signal|kill, whose exit time is reported' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l source-addrs -d 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l stats-token -d 'The server\'s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator\'s. Without it the report has the client-side figures only' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l save -d 'Also write the JSON report to this file' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -l json -d 'Print the report as JSON on stdout instead of a table'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -s h -l help -d 'Print help'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from mixed" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -s n -l sockets -d 'Sockets to open on node A (--url) before the drain (≤ ~18,000 per generator process under a 20,000 open-file limit)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l survivor -d 'Another node of the cluster (ws://HOST:PORT): drained sockets reconnect to the survivors round-robin, as a load balancer would. Repeat for each survivor' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l drain-with -d 'How node A is made to shed its sockets' -r -f -a "admin\t'`POST /admin/drain` with the admin token (and --window / --pre-delay, if given)'
signal\t'SIGTERM to --server-pid: the node\'s own paced drain with its configured settings'
kill\t'SIGKILL to --server-pid: abrupt death, every socket reset at once'"
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l admin-token -d 'Admin token of node A, for --drain-with admin' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l window -d 'Window over which node A spreads its reconnect hints (`window_secs` of the drain request; --drain-with admin only) [default: the node\'s --drain-window]. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l pre-delay -d 'Wait between the health flip and the first hint (`pre_delay_secs`; --drain-with admin only) [default: the node\'s --pre-drain-delay]. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -s c -l channels-per-socket -d 'Private channels each socket joins, signed, and joins again after every reconnect (typical apps use 2–3 per connection): the auth-request rate follows' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l url -d 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l app-id -d 'App id, for the HTTP API (`/apps/{id}/events`)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l key -d 'App key, for WebSocket URLs and signatures' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l secret -d 'App secret: signs private/presence subscriptions and HTTP API requests, as the app\'s backend would. Never printed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l duration -d 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l hold -d 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l rate -d 'Connection ramp: new sockets per second' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l connect-timeout -d 'Give up on one socket\'s connect + handshake + subscriptions after this long' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l server-pid -d 'The server\'s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A\'s process, signalled by --drain-with signal|kill, whose exit time is reported' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l source-addrs -d 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l stats-token -d 'The server\'s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator\'s. Without it the report has the client-side figures only' -r
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l save -d 'Also write the JSON report to this file' -r -F
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -l json -d 'Print the report as JSON on stdout instead of a table'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from drain" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "connections" -d 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server\'s RSS per socket and idle CPU'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "fanout" -d 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "presence" -d 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "mixed" -d 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "drain" -d 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced'
complete -c rtc -n "__fish_rtc_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rtc -n "__fish_rtc_using_subcommand completions" -s h -l help -d 'Print help'
complete -c rtc -n "__fish_rtc_using_subcommand completions" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand man" -s h -l help -d 'Print help'
complete -c rtc -n "__fish_rtc_using_subcommand man" -s V -l version -d 'Print version'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "serve" -d 'Run a Pusher Channels (protocol 7) WebSocket server and the Pusher HTTP API on one port'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "top" -d 'Live dashboard of every node: connections against the planning line, pub/sub buffer, presence cost, auth rate, CPU, lag, drain state'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "status" -d 'The same figures once, as a table or --json; exits 1 when an alert fires'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "drain" -d 'Drain one node (paced 4200 reconnect hints, then exit) and show its progress'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "roll" -d 'Rolling restart of a cluster, one node at a time: capacity gate, drain, wait for it to come back serving, next'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "bench" -d 'Measure a Pusher-compatible server: connections, fan-out, presence, the mix'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "completions" -d 'Print shell completions for rtc to stdout'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "man" -d 'Print the man page (roff) for rtc or one of its subcommands to stdout'
complete -c rtc -n "__fish_rtc_using_subcommand help; and not __fish_seen_subcommand_from serve top status drain roll bench completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rtc -n "__fish_rtc_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "connections" -d 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server\'s RSS per socket and idle CPU'
complete -c rtc -n "__fish_rtc_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "fanout" -d 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost'
complete -c rtc -n "__fish_rtc_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "presence" -d 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency'
complete -c rtc -n "__fish_rtc_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "mixed" -d 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios'
complete -c rtc -n "__fish_rtc_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "drain" -d 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced'
