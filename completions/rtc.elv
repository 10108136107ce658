
use builtin;
use str;

set edit:completion:arg-completer[rtc] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'rtc'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'rtc'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run a Pusher Channels (protocol 7) WebSocket server and the Pusher HTTP API on one port'
            cand top 'Live dashboard of every node: connections against the planning line, pub/sub buffer, presence cost, auth rate, CPU, lag, drain state'
            cand status 'The same figures once, as a table or --json; exits 1 when an alert fires'
            cand drain 'Drain one node (paced 4200 reconnect hints, then exit) and show its progress'
            cand roll 'Rolling restart of a cluster, one node at a time: capacity gate, drain, wait for it to come back serving, next'
            cand bench 'Measure a Pusher-compatible server: connections, fan-out, presence, the mix'
            cand completions 'Print shell completions for rtc to stdout'
            cand man 'Print the man page (roff) for rtc or one of its subcommands to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtc;serve'= {
            cand -c 'TOML config file (see rtc.example.toml) [default: ./rtc.toml when it exists]'
            cand --config 'TOML config file (see rtc.example.toml) [default: ./rtc.toml when it exists]'
            cand --host 'Address to listen on [default: 0.0.0.0, or 127.0.0.1 while the development app is served; Reverb: REVERB_SERVER_HOST]'
            cand --port 'Port to listen on; 0 picks a free one [default: 8080; Reverb: REVERB_SERVER_PORT]'
            cand --path 'Path prefix of the WebSocket and HTTP API routes, e.g. /ws; health, /metrics and /admin stay at the root [default: none; Reverb: REVERB_SERVER_PATH]'
            cand --max-request-size 'Largest HTTP API request body in bytes [default: 262144; Reverb: REVERB_MAX_REQUEST_SIZE]'
            cand --admin-token 'Token that admin endpoints (/admin/*, /metrics) require as `Authorization: Bearer`. When unset, a random one is generated and printed at start-up'
            cand --node-id 'This node''s id [default: derived from the hostname]'
            cand --log-format 'Log format [default: text]. Filter with RUST_LOG (e.g. RUST_LOG=rtc=debug)'
            cand --outbound-queue-bytes 'Bytes queued for one socket before it is closed as a slow consumer (4100) [default: 1048576]'
            cand --max-new-connections-per-sec 'New WebSocket connections this node accepts per second; above it upgrades get 503 with Retry-After, so a reconnect storm cannot take the node down; 0 = no limit [default: 5000]'
            cand --fanout-budget-ms 'Fan-out budget in milliseconds: a broadcast''s fan-out time above it alerts in the console, and the measured line is the socket count a broadcast reaches within it [default: 50]'
            cand --tls-cert 'PEM certificate chain (leaf first): serve wss:// and https:// on the port; needs --tls-key [default: none, plain ws:// and http://]'
            cand --tls-key 'PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert; needs --tls-cert'
            cand --header-timeout 'Seconds a client has to send a complete request head after connecting or after its previous response (so also the keep-alive idle timeout) [default: 10]'
            cand --body-timeout 'Seconds a client has to send a whole request body after its head [default: 30]'
            cand --connection-limit 'Open connections (HTTP, WebSocket, TLS handshakes) this node holds; at the cap the oldest connection that has not sent a request is closed to make room, else the new one is; 0 = no cap [default: the open-file limit minus a reserve for health checks, admin and Redis]'
            cand --max-connections-per-address 'Open connections per client address (the TCP peer; trusted proxies are exempt); 0 = no cap [default: 0]'
            cand --max-new-connections-per-address-per-sec 'New WebSocket connections per client address per second (behind a trusted proxy the address comes from X-Forwarded-For); 0 = no limit [default: 0]'
            cand --trusted-proxies 'Proxies (IP addresses or CIDR ranges, comma-separated) whose X-Forwarded-For is believed [default: none]'
            cand --redis-url 'Redis URL of the cluster''s pub/sub Redis; setting it switches cluster mode on [Reverb: REVERB_SCALING_ENABLED with REDIS_URL or REDIS_HOST/PORT/USERNAME/PASSWORD/DB]'
            cand --bus 'The cluster''s engine, by URL; setting it switches cluster mode on: `redis://HOST:PORT` (one Redis, as --redis-url), `redis-cluster://HOST:PORT[,HOST:PORT…]` (a Redis Cluster: sharded pub/sub) or `nats://HOST:PORT` (NATS with JetStream)'
            cand --cluster 'Cluster name: prefixes every Redis key and channel, so clusters can share a Redis [default: local; Reverb: REVERB_SCALING_CHANNEL]'
            cand --advertise-url 'URL at which the console and other nodes reach this node [default: http://HOST:PORT, with 127.0.0.1 for 0.0.0.0]'
            cand --cluster-secret 'Shared secret of the cluster: every bus message carries an HMAC-SHA256 keyed by it, and messages without a valid one are dropped (counted as `unauthenticated`). Give every node the same value (at least 16 characters) [default: none: the bus trusts anyone who can publish to the cluster''s Redis]'
            cand --planning-line 'Connections per node the cluster is planned for; the console and `rtc roll` warn and refuse against it [default: 12000]'
            cand --pre-drain-delay 'Seconds between the health flip and the first reconnect hint, so the load balancer stops routing here first [default: 5]'
            cand --drain-window 'Seconds over which reconnect hints (close 4200) are spread, in shuffled order [default: 15]'
            cand --drain-rate 'Most reconnect hints per second; 0 = only the window paces them [default: 0]'
            cand --drain-timeout 'Seconds from the drain''s start after which whatever is left is closed and the process exits; keep it below the orchestrator''s kill timeout [default: 25]'
            cand --drain-presence-grace 'Seconds a presence member who left a draining node is kept, so a client that reconnects to another node within it causes no member_removed/member_added flap [default: 10]'
            cand --app-id 'Id of the app defined by flags/env; with --app-key and --app-secret it replaces the development app [Reverb: REVERB_APP_ID]'
            cand --app-key 'Key of the flags/env app [Reverb: REVERB_APP_KEY]'
            cand --app-secret 'Secret of the flags/env app [Reverb: REVERB_APP_SECRET]'
            cand --activity-timeout 'Seconds of silence after which clients ping [default: 120; Reverb: REVERB_APP_ACTIVITY_TIMEOUT]'
            cand --ping-interval 'Seconds of silence after which the server pings a socket [default: the activity timeout + 30, so clients ping first; Reverb: REVERB_APP_PING_INTERVAL]'
            cand --max-connections 'Connection quota for the app, 0 = unlimited [Reverb: REVERB_APP_MAX_CONNECTIONS]'
            cand --max-message-size 'Largest WebSocket message from a client in bytes [default: 10000; Reverb: REVERB_APP_MAX_MESSAGE_SIZE]'
            cand --client-events 'Who may send client events [default: members; Reverb: REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM]'
            cand --allowed-origins 'Allowed Origin headers, comma-separated; `*` wildcards [default: *]'
            cand --subscription-count 'Send pusher_internal:subscription_count to subscribers [default: false]'
            cand --require-signin-within 'Close sockets (4009) that have not signed in or joined a private/presence channel within this many seconds; 0 = off [default: 0]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;top'= {
            cand --cluster 'The cluster''s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]'
            cand --config 'Config file holding the [clusters.NAME] tables'
            cand --bus 'Read the node registry straight from the cluster''s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)'
            cand --redis-url 'Read the node registry straight from this Redis (the cluster''s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL'
            cand --node 'A standalone node''s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed'
            cand --token 'Admin token sent as ''Authorization: Bearer'' to nodes'' /admin endpoints (overrides the cluster''s admin_token)'
            cand --interval 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)'
            cand --planning-line 'Connections per node to plan for (default: the cluster''s planning_line, else the node''s own, else 12000)'
            cand --write 'Allow actions that change the cluster (d: drain the selected node, after a confirmation showing the capacity check). Read-only without it'
            cand --no-color 'No colour (also when NO_COLOR is set). States keep their glyphs'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;status'= {
            cand --cluster 'The cluster''s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]'
            cand --config 'Config file holding the [clusters.NAME] tables'
            cand --bus 'Read the node registry straight from the cluster''s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)'
            cand --redis-url 'Read the node registry straight from this Redis (the cluster''s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL'
            cand --node 'A standalone node''s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed'
            cand --token 'Admin token sent as ''Authorization: Bearer'' to nodes'' /admin endpoints (overrides the cluster''s admin_token)'
            cand --interval 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)'
            cand --planning-line 'Connections per node to plan for (default: the cluster''s planning_line, else the node''s own, else 12000)'
            cand --json 'Print JSON (stable snake_case keys) instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;drain'= {
            cand --cluster 'The cluster''s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]'
            cand --config 'Config file holding the [clusters.NAME] tables'
            cand --bus 'Read the node registry straight from the cluster''s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)'
            cand --redis-url 'Read the node registry straight from this Redis (the cluster''s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL'
            cand --node 'A standalone node''s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed'
            cand --token 'Admin token sent as ''Authorization: Bearer'' to nodes'' /admin endpoints (overrides the cluster''s admin_token)'
            cand --interval 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)'
            cand --planning-line 'Connections per node to plan for (default: the cluster''s planning_line, else the node''s own, else 12000)'
            cand --timeout 'Give up waiting after this many seconds (exit 1); the drain itself goes on [default: the node''s drain timeout plus 15 s]'
            cand --window 'Spread the reconnect hints over this many seconds (overrides the node''s window)'
            cand --rate 'At most this many reconnect hints per second (overrides the node''s rate)'
            cand --no-wait 'Start the drain and return at once'
            cand --force 'Drain even when the capacity check fails (survivors over the planning line, or the last serving node)'
            cand --dry-run 'Show the capacity check and stop (exit 0 when the drain would go ahead, 3 when it would be refused)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;roll'= {
            cand --cluster 'The cluster''s name, as `rtc serve --cluster NAME`. Its engine is --bus (or --redis-url), else the [clusters.NAME] table of the config file (keys: bus or redis_url, admin_token, planning_line, nodes). With neither flag, a config file with exactly one [clusters.*] table picks that one. [default with --bus or --redis-url: local]'
            cand --config 'Config file holding the [clusters.NAME] tables'
            cand --bus 'Read the node registry straight from the cluster''s engine, the URL the nodes were given as `rtc serve --bus`: redis://HOST:PORT (one Redis), redis-cluster://HOST:PORT[,…] (a Redis Cluster) or nats://HOST:PORT (NATS JetStream)'
            cand --redis-url 'Read the node registry straight from this Redis (the cluster''s pub/sub Redis), e.g. redis://127.0.0.1:6379: the same as --bus with a redis:// URL'
            cand --node 'A standalone node''s base URL (its admin API), e.g. http://127.0.0.1:6001. Repeat for several nodes. With --cluster, --bus or --redis-url: nodes to poll directly while the registry does not answer, besides those it listed'
            cand --token 'Admin token sent as ''Authorization: Bearer'' to nodes'' /admin endpoints (overrides the cluster''s admin_token)'
            cand --interval 'How often to poll, e.g. 1s, 500ms, 2.5s (250ms to 60s)'
            cand --planning-line 'Connections per node to plan for (default: the cluster''s planning_line, else the node''s own, else 12000)'
            cand --order 'Node ids in the order to roll them, comma-separated [default: registry order]'
            cand --exec 'Command that restarts a node, `{node}` replaced by its id (e.g. ''systemctl restart rtc@{node}''); it must stop the node with SIGTERM (the paced drain). It runs without a shell: the template is split into words once (quotes as in sh), then `{node}` is replaced inside each word, so an id can never add arguments or commands. Only trusted registry entries are restarted. Without it, rtc asks the node to drain and expects a supervisor to start it again'
            cand --timeout 'Seconds to wait for one node to drain and come back'
            cand --settle 'Seconds a restarted node must stay serving before the next step'
            cand --from 'Start at this node (skip the ones before it in the order)'
            cand --dry-run 'Print the plan with the headroom arithmetic of every step and change nothing'
            cand --force 'Roll even when a step would put survivors past the planning line'
            cand --resume 'Continue the interrupted roll recorded on the cluster''s engine'
            cand --no-cordon 'Never cordon the nodes not yet rolled'
            cand --json 'NDJSON events on stdout instead of lines'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;bench'= {
            cand --url 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own'
            cand --app-id 'App id, for the HTTP API (`/apps/{id}/events`)'
            cand --key 'App key, for WebSocket URLs and signatures'
            cand --secret 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed'
            cand --duration 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m'
            cand --hold 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed'
            cand --rate 'Connection ramp: new sockets per second'
            cand --connect-timeout 'Give up on one socket''s connect + handshake + subscriptions after this long'
            cand --server-pid 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported'
            cand --source-addrs 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)'
            cand --stats-token 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only'
            cand --save 'Also write the JSON report to this file'
            cand --json 'Print the report as JSON on stdout instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand connections 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server''s RSS per socket and idle CPU'
            cand fanout 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost'
            cand presence 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency'
            cand mixed 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios'
            cand drain 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtc;bench;connections'= {
            cand -n 'Sockets to open (the file limit here allows ~19,000)'
            cand --sockets 'Sockets to open (the file limit here allows ~19,000)'
            cand -c 'Channels to spread the sockets over (socket i joins channel i mod C); 0 = none'
            cand --channels 'Channels to spread the sockets over (socket i joins channel i mod C); 0 = none'
            cand --channel-kind 'Type of those channels'
            cand --activity-timeout 'The client''s own activity timeout (pusher-js `activityTimeout`): after the smaller of this and the server''s advertised one without a message, a socket sends `pusher:ping`. 0 = never ping. Units: ms, s (default), m'
            cand --url 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own'
            cand --app-id 'App id, for the HTTP API (`/apps/{id}/events`)'
            cand --key 'App key, for WebSocket URLs and signatures'
            cand --secret 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed'
            cand --duration 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m'
            cand --hold 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed'
            cand --rate 'Connection ramp: new sockets per second'
            cand --connect-timeout 'Give up on one socket''s connect + handshake + subscriptions after this long'
            cand --server-pid 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported'
            cand --source-addrs 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)'
            cand --stats-token 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only'
            cand --save 'Also write the JSON report to this file'
            cand --json 'Print the report as JSON on stdout instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;bench;fanout'= {
            cand -s 'Subscribers of the channel'
            cand --subscribers 'Subscribers of the channel'
            cand -b 'Events published per second, one HTTP request each'
            cand --events-per-sec 'Events published per second, one HTTP request each'
            cand --channel-kind 'Type of the channel (presence: every subscriber is a member, within the server''s member limit)'
            cand --payload 'Bytes of event data (at least the ~20-byte timestamp header)'
            cand --url 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own'
            cand --app-id 'App id, for the HTTP API (`/apps/{id}/events`)'
            cand --key 'App key, for WebSocket URLs and signatures'
            cand --secret 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed'
            cand --duration 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m'
            cand --hold 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed'
            cand --rate 'Connection ramp: new sockets per second'
            cand --connect-timeout 'Give up on one socket''s connect + handshake + subscriptions after this long'
            cand --server-pid 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported'
            cand --source-addrs 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)'
            cand --stats-token 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only'
            cand --save 'Also write the JSON report to this file'
            cand --json 'Print the report as JSON on stdout instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;bench;presence'= {
            cand -m 'Members of the presence channel (the server''s `max_presence_members` must allow them plus the spares, 2 × churn)'
            cand --members 'Members of the presence channel (the server''s `max_presence_members` must allow them plus the spares, 2 × churn)'
            cand -j 'Joins per second, and as many leaves per second'
            cand --churn 'Joins per second, and as many leaves per second'
            cand --url 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own'
            cand --app-id 'App id, for the HTTP API (`/apps/{id}/events`)'
            cand --key 'App key, for WebSocket URLs and signatures'
            cand --secret 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed'
            cand --duration 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m'
            cand --hold 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed'
            cand --rate 'Connection ramp: new sockets per second'
            cand --connect-timeout 'Give up on one socket''s connect + handshake + subscriptions after this long'
            cand --server-pid 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported'
            cand --source-addrs 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)'
            cand --stats-token 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only'
            cand --save 'Also write the JSON report to this file'
            cand --json 'Print the report as JSON on stdout instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;bench;mixed'= {
            cand -n 'Sockets in all; each joins one private channel'
            cand --sockets 'Sockets in all; each joins one private channel'
            cand -g 'Subscribers per private channel (channels = sockets / group, rounded up)'
            cand --group 'Subscribers per private channel (channels = sockets / group, rounded up)'
            cand -e 'Events per second, spread round-robin over the private channels'
            cand --events-per-sec 'Events per second, spread round-robin over the private channels'
            cand -m 'Members of the presence channel (taken from the sockets; 0 = no presence channel)'
            cand --members 'Members of the presence channel (taken from the sockets; 0 = no presence channel)'
            cand -j 'Presence joins per second, and as many leaves per second'
            cand --churn 'Presence joins per second, and as many leaves per second'
            cand --payload 'Bytes of event data (at least the ~20-byte timestamp header)'
            cand --url 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own'
            cand --app-id 'App id, for the HTTP API (`/apps/{id}/events`)'
            cand --key 'App key, for WebSocket URLs and signatures'
            cand --secret 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed'
            cand --duration 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m'
            cand --hold 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed'
            cand --rate 'Connection ramp: new sockets per second'
            cand --connect-timeout 'Give up on one socket''s connect + handshake + subscriptions after this long'
            cand --server-pid 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported'
            cand --source-addrs 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)'
            cand --stats-token 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only'
            cand --save 'Also write the JSON report to this file'
            cand --json 'Print the report as JSON on stdout instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;bench;drain'= {
            cand -n 'Sockets to open on node A (--url) before the drain (≤ ~18,000 per generator process under a 20,000 open-file limit)'
            cand --sockets 'Sockets to open on node A (--url) before the drain (≤ ~18,000 per generator process under a 20,000 open-file limit)'
            cand --survivor 'Another node of the cluster (ws://HOST:PORT): drained sockets reconnect to the survivors round-robin, as a load balancer would. Repeat for each survivor'
            cand --drain-with 'How node A is made to shed its sockets'
            cand --admin-token 'Admin token of node A, for --drain-with admin'
            cand --window 'Window over which node A spreads its reconnect hints (`window_secs` of the drain request; --drain-with admin only) [default: the node''s --drain-window]. Units: ms, s (default), m'
            cand --pre-delay 'Wait between the health flip and the first hint (`pre_delay_secs`; --drain-with admin only) [default: the node''s --pre-drain-delay]. Units: ms, s (default), m'
            cand -c 'Private channels each socket joins, signed, and joins again after every reconnect (typical apps use 2–3 per connection): the auth-request rate follows'
            cand --channels-per-socket 'Private channels each socket joins, signed, and joins again after every reconnect (typical apps use 2–3 per connection): the auth-request rate follows'
            cand --url 'Server to load: its WebSocket base URL (ws://HOST:PORT[/PREFIX]). The HTTP API is reached at the same host, port and prefix. Use a loopback address or a server you own'
            cand --app-id 'App id, for the HTTP API (`/apps/{id}/events`)'
            cand --key 'App key, for WebSocket URLs and signatures'
            cand --secret 'App secret: signs private/presence subscriptions and HTTP API requests, as the app''s backend would. Never printed'
            cand --duration 'Hard bound on the whole run (ramp, steady phase, settling): the scenario stops by itself by then. Units: ms, s (default), m'
            cand --hold 'Length of the steady phase after the ramp: idle hold for `connections`, publishing/churn for the others (`drain` follows the drain instead). Cut short when --duration would be passed'
            cand --rate 'Connection ramp: new sockets per second'
            cand --connect-timeout 'Give up on one socket''s connect + handshake + subscriptions after this long'
            cand --server-pid 'The server''s process id: report its RSS per socket (/proc/PID/status VmRSS before the ramp and at the end of the steady phase) and its CPU during the steady phase. For `drain`: node A''s process, signalled by --drain-with signal|kill, whose exit time is reported'
            cand --source-addrs 'Source addresses to spread sockets over (127.0.0.1, .2, ...), to pass the ephemeral ports of one address; 0 = enough for the socket count (loopback targets only)'
            cand --stats-token 'The server''s admin token: read its own fan-out figures (`/metrics` at both ends of the measured phase, `/admin/stats` at the end) and report them beside the generator''s. Without it the report has the client-side figures only'
            cand --save 'Also write the JSON report to this file'
            cand --json 'Print the report as JSON on stdout instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;bench;help'= {
            cand connections 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server''s RSS per socket and idle CPU'
            cand fanout 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost'
            cand presence 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency'
            cand mixed 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios'
            cand drain 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtc;bench;help;connections'= {
        }
        &'rtc;bench;help;fanout'= {
        }
        &'rtc;bench;help;presence'= {
        }
        &'rtc;bench;help;mixed'= {
        }
        &'rtc;bench;help;drain'= {
        }
        &'rtc;bench;help;help'= {
        }
        &'rtc;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rtc;help'= {
            cand serve 'Run a Pusher Channels (protocol 7) WebSocket server and the Pusher HTTP API on one port'
            cand top 'Live dashboard of every node: connections against the planning line, pub/sub buffer, presence cost, auth rate, CPU, lag, drain state'
            cand status 'The same figures once, as a table or --json; exits 1 when an alert fires'
            cand drain 'Drain one node (paced 4200 reconnect hints, then exit) and show its progress'
            cand roll 'Rolling restart of a cluster, one node at a time: capacity gate, drain, wait for it to come back serving, next'
            cand bench 'Measure a Pusher-compatible server: connections, fan-out, presence, the mix'
            cand completions 'Print shell completions for rtc to stdout'
            cand man 'Print the man page (roff) for rtc or one of its subcommands to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rtc;help;serve'= {
        }
        &'rtc;help;top'= {
        }
        &'rtc;help;status'= {
        }
        &'rtc;help;drain'= {
        }
        &'rtc;help;roll'= {
        }
        &'rtc;help;bench'= {
            cand connections 'Ramp N sockets at --rate per second, optionally subscribed to C channels; hold them idle (answering pings, pinging as pusher-js does) and report connect success, connect latency and the server''s RSS per socket and idle CPU'
            cand fanout 'S subscribers on one channel; B events per second through the signed HTTP API, each carrying its send time. Reports per-delivery latency, time to the last subscriber of each event and deliveries lost'
            cand presence 'One presence channel of M members with J joins and J leaves per second. Reports member_added/member_removed frames per second and their latency'
            cand mixed 'The production mix: N sockets on private channels of ~G subscribers, E events per second spread over them, and one presence channel of M members with J joins and J leaves per second. Reports every figure of the other scenarios'
            cand drain 'N sockets on node A (--url) are drained or killed; they reconnect to the --survivor nodes as pusher-js does (close 4200–4299 at once, anything else after 1 s, no jitter; round-robin over the survivors, as a load balancer would) and resubscribe their signed private channels. Reports arrivals per survivor per 100 ms, the peak reconnect and auth rates (busiest 1 s), how the closes spread, the time until every socket is back, and sockets lost or forced'
        }
        &'rtc;help;bench;connections'= {
        }
        &'rtc;help;bench;fanout'= {
        }
        &'rtc;help;bench;presence'= {
        }
        &'rtc;help;bench;mixed'= {
        }
        &'rtc;help;bench;drain'= {
        }
        &'rtc;help;completions'= {
        }
        &'rtc;help;man'= {
        }
        &'rtc;help;help'= {
        }
    ]
    $completions[$command]
}
