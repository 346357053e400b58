import ShuttleModel

/// The proxy process: the model and what the driver keeps beside it (bound
/// sockets, running checks, open admin requests). A crash loses all of it;
/// only the state file on disk survives.
struct ProxyProcess {
    var registry: Registry
    var up = true
    var epoch: UInt32 = 0
    /// Bound sockets by port (port << 1 | 1 for UDP).
    var ports: [Int: ListenerID] = [:]
    var listeners: [ListenerID: Listener] = [:]
    /// Asked for by the model, not bound yet.
    var binding: [ListenerID: Listener] = [:]
    var checkers: [BackendID: Checker] = [:]
    var udp: [ListenerID: UDPSocket] = [:]
    var requests: [RequestID: Expectation?] = [:]
    var nextRequest: UInt64 = 1
    /// The admin request that loads the state file after a restart.
    var loading: RequestID?
    /// Proxied connections of this process, to reset them if it crashes.
    var live: [Int32] = []

    init(seed: UInt64) { registry = Registry(seed: seed) }
}

/// A running health check.
struct Checker {
    var check: HealthCheck
    var generation: UInt32
}

/// A health check's connect in flight.
struct Probe {
    var backend: BackendID
    var generation: UInt32
    var done = false
}

/// A UDP service's socket: its flows by client endpoint, and in the order
/// they began (which is the order they are swept in).
struct UDPSocket {
    var flows: [Int: Int32] = [:]
    var order: [Int32] = []
}

/// What the proxy keeps of one client: a TCP connection glued to a backend
/// connection (as `TCPProxyConnection`), an HTTP request, or a UDP flow (as
/// `UDPFlow`).
struct ProxyConnection {
    enum Kind: UInt8 { case tcp, http, udp }
    var kind: Kind
    var id: ConnectionID
    var epoch: UInt32
    var tag: Int32
    var listener: ListenerID?
    var front: Int32 = -1
    var back: Int32 = -1
    var connecting = false
    var clientClosed = false
    var finished = false
    var glued = false
    var clientFin = false
    var backendFin = false
    /// Client bytes read before a backend is there to take them.
    var pending = 0
    var sent = 0
    var received = 0
    var reportedSent = 0
    var reportedReceived = 0
    var lastReport: UInt64 = 0
    var clientTimeout: UInt64 = 0
    var serverTimeout: UInt64 = 0
    var lastClientIO: UInt64 = 0
    var lastBackendIO: UInt64 = 0
    var idleGeneration: UInt32 = 0
    var idleDue: UInt64 = 0
    // HTTP
    var requestStarted = false
    var requestOpen = false
    var headBytes = 0
    // UDP
    var client = 0
    var backendEndpoint = -1
    var queued: [Int32] = []
    var lastActive: UInt64 = 0
    var flowTimeout: UInt64 = seconds(30)
    var ended = false
    var refusal: String?

    init(kind: Kind, id: ConnectionID, epoch: UInt32, tag: Int32) {
        self.kind = kind
        self.id = id
        self.epoch = epoch
        self.tag = tag
    }
}

extension Simulation {
    /// Byte counts reach the model at close and at most this often meanwhile.
    static let reportInterval = seconds(1)
    /// The operating system's connect timeout when the config sets none.
    static let defaultConnectTimeout = seconds(10)
    /// UDP flows held per service, and datagrams held per connecting flow.
    static let maximumQueued = 64

    // MARK: The model

    /// Feeds one event to the model, records it, checks every invariant.
    @discardableResult
    mutating func send(_ event: Event) -> [Action] {
        let actions = proxy.registry.handle(event)
        modelEvents += 1
        digest.mix(event, actions)
        let step = TraceStep.event(event, actions: actions, expect: expectation)
        if trace != nil {
            let time = now
            trace!.append(TimedStep(time: time, step: step))
        }
        if failure == nil, let violation = checker.observe(step, registry: proxy.registry) {
            fail(violation, inModelTrace: true)
        }
        return actions
    }

    /// Carries out the actions that are not about one client.
    mutating func perform(_ actions: [Action]) {
        for action in actions { perform(action) }
    }

    mutating func perform(_ action: Action) {
        guard proxy.up else { return }  // the process exited while carrying out an event's actions
        switch action {
        case .bindListener(let listener):
            proxy.binding[listener.id] = listener
            queue.push(.bindDone(listener: listener.id.raw, epoch: proxy.epoch), at: now + us(random.int(10...200)))
        case .closeListener(let id):
            closeListener(id)
        case .startHealthCheck(let check):
            let generation = nextGeneration()
            proxy.checkers[check.backend] = Checker(check: check, generation: generation)
            queue.push(.probe(backend: check.backend.raw, generation: generation), at: now)
        case .stopHealthCheck(let id):
            proxy.checkers[id] = nil
        case .retireBackend:
            break  // the simulated proxy keeps no idle connections
        case .persist(let config):
            disk = config
        case .reply(let id, let reply):
            if proxy.loading == id {
                proxy.loading = nil
                if case .bindFailed = reply {
                    // The daemon cannot listen on its config's addresses: it exits, and is started again later.
                    tally("proxy start failed")
                    crashProxy()
                    queue.push(.proxyStart, at: now + seconds(1))
                    return
                }
            }
            if proxy.requests.removeValue(forKey: id) != nil {
                adminOutstanding -= 1
                switch reply {
                case .applied:
                    targets = nil
                    tally("admin applied")
                case .rejected: tally("admin rejected")
                case .notFound: tally("admin not found")
                case .bindFailed: tally("admin bind failed")
                }
            }
        case .backendHealthChanged:
            break  // logged by the runtime
        case .connectBackend, .closeClient, .answerRequest:
            // Only the connection itself carries these out.
            fail(Violation(.outcomes, "\(action) reached the driver, not its connection"), inModelTrace: false)
        }
    }

    mutating func nextGeneration() -> UInt32 {
        generationCounter += 1
        return generationCounter
    }

    /// Sends an admin command as the admin API would.
    mutating func submit(_ command: AdminCommand, expect: Expectation?) {
        counts.admin += 1
        guard proxy.up else {
            tally("admin lost: proxy down")
            return
        }
        let id = RequestID(proxy.nextRequest)
        proxy.nextRequest += 1
        proxy.requests[id] = expect
        adminOutstanding += 1
        expectation = expect
        let actions = send(.admin(id, command))
        expectation = nil
        perform(actions)
    }

    // MARK: Listeners

    func portKey(_ port: Int, udp: Bool) -> Int { port << 1 | (udp ? 1 : 0) }

    mutating func bindDone(_ id: ListenerID, epoch: UInt32) {
        guard epoch == proxy.epoch, proxy.up, let listener = proxy.binding.removeValue(forKey: id) else { return }
        let udp = listener.network.isDatagram
        var reason: String?
        var address = listener.address
        if case .success(let parsed) = HostPort.parse(listener.address, listening: true) {
            var port = parsed.port
            let local = parsed.host == .any || parsed.hostString == World.proxyIP
            if port == 0 {
                repeat {
                    ephemeralPort += 1
                    port = ephemeralPort
                } while proxy.ports[portKey(port, udp: udp)] != nil
            }
            let key = portKey(port, udp: udp)
            if !local {
                reason = "cannot assign requested address"
            } else if proxy.ports[key] != nil || foreignPorts[key, default: 0] > 0 || (!udp && port == World.httpPort) {
                reason = "address already in use"
            } else {
                proxy.ports[key] = id
                proxy.listeners[id] = listener
                address = "\(parsed.host == .any ? "0.0.0.0" : World.proxyIP):\(port)"
                if udp {
                    proxy.udp[id] = UDPSocket()
                    queue.push(.udpSweep(listener: id.raw, epoch: proxy.epoch), at: now + seconds(1))
                }
            }
        } else {
            reason = "bad address"
        }
        if let reason {
            perform(send(.listenerFailed(id, reason: reason)))
        } else {
            perform(send(.listenerBound(id, address: address)))
        }
    }

    mutating func closeListener(_ id: ListenerID) {
        guard let listener = proxy.listeners.removeValue(forKey: id) else { return }
        if let key = proxy.ports.first(where: { $0.value == id })?.key { proxy.ports[key] = nil }
        if listener.network.isDatagram, let socket = proxy.udp.removeValue(forKey: id) {
            // The socket's handler goes away: its flows end.
            for p in socket.order.map(Int.init) where !proxyConnections[p].ended { endFlow(p, socket: false) }
        }
    }

    // MARK: TCP and HTTP clients

    /// A client connected to a listener (or the HTTP port).
    mutating func frontAccepted(_ c: Int, listener: ListenerID?) -> Int {
        let p = proxyConnections.count
        let id = ConnectionID(UInt64(p + 1))
        var connection = ProxyConnection(kind: listener == nil ? .http : .tcp, id: id, epoch: proxy.epoch, tag: tcp[c].tag)
        connection.front = Int32(c)
        connection.listener = listener
        connection.lastReport = now
        connection.lastClientIO = now
        proxyConnections.append(connection)
        proxy.live.append(Int32(p))
        return p
    }

    /// After the handshake: a TCP client is placed at once (an HTTP one
    /// when its request head has arrived).
    mutating func frontStarted(_ p: Int) {
        guard proxyConnections[p].kind == .tcp, let listener = proxyConnections[p].listener else { return }
        let c = Int(proxyConnections[p].front)
        let key = hosts[Int(tcp[c].source)].key
        carryOut(p, send(.clientConnected(proxyConnections[p].id, listener: listener, key: key)))
    }

    /// Carries out the model's answer about connection `p`.
    mutating func carryOut(_ p: Int, _ actions: [Action]) {
        let id = proxyConnections[p].id
        for action in actions {
            switch action {
            case .connectBackend(id, let target): connectBackend(p, target)
            case .closeClient(id, let reason): closeClient(p, reason)
            case .answerRequest(id, let answer): respond(p, status: answer.status)
            default: perform(action)
            }
        }
    }

    mutating func connectBackend(_ p: Int, _ target: BackendTarget) {
        let id = proxyConnections[p].id
        if proxyConnections[p].kind == .http { proxyConnections[p].requestOpen = true }
        guard let destination = resolve(target.address) else {
            return carryOut(p, send(.backendConnectFailed(id, reason: "bad address \(target.address)")))
        }
        proxyConnections[p].clientTimeout = ms(target.clientTimeout)
        proxyConnections[p].serverTimeout = ms(target.serverTimeout)
        if proxyConnections[p].kind == .udp {
            if target.clientTimeout > 0 { proxyConnections[p].flowTimeout = ms(target.clientTimeout) }
            proxyConnections[p].backendEndpoint = destination
            proxyConnections[p].connecting = true
            queue.push(.udpConnected(connection: Int32(p)), at: now + us(5))
            return
        }
        proxyConnections[p].connecting = true
        let c = openTCP(
            .back(Int32(p)), from: Self.proxyHost, to: hostOf(destination), port: portOf(destination),
            tag: proxyConnections[p].tag)
        proxyConnections[p].back = Int32(c)
        let timeout = target.connectTimeout > 0 ? ms(target.connectTimeout) : Self.defaultConnectTimeout
        queue.push(.connectTimeout(conn: Int32(c)), at: now + timeout)
    }

    mutating func backSegment(_ p: Int, _ kind: Segment, bytes: Int) {
        guard proxyConnections[p].epoch == proxy.epoch, proxy.up else { return }
        switch kind {
        case .synAck:
            backConnected(p)
        case .rst:
            if proxyConnections[p].connecting {
                backConnectFailed(p, reason: "connection refused")
            } else {
                backendClosed(p, reset: true)
            }
        case .data:
            proxyConnections[p].lastBackendIO = now
            proxyConnections[p].received += bytes
            if proxyConnections[p].kind == .http {
                guard proxyConnections[p].requestOpen else { return }
                reportBytes(p)
                proxyConnections[p].requestOpen = false
                send(.requestFinished(proxyConnections[p].id, .responded(status: 200)))
                closeBack(p)
                respond(p, status: 200)
                return
            }
            if !proxyConnections[p].clientClosed {
                proxyConnections[p].lastClientIO = now
                transmit(Int(proxyConnections[p].front), toAcceptor: false, .data, bytes: bytes)
            }
            reportIfDue(p)
        case .fin:
            backendClosed(p, reset: false)
        case .syn:
            break
        }
    }

    mutating func backConnected(_ p: Int) {
        proxyConnections[p].connecting = false
        if proxyConnections[p].kind == .http && proxyConnections[p].finished { return closeBack(p) }
        send(.backendConnected(proxyConnections[p].id))
        if proxyConnections[p].clientClosed {
            closeBack(p)
            return finish(p)
        }
        let back = Int(proxyConnections[p].back)
        proxyConnections[p].glued = true
        proxyConnections[p].lastBackendIO = now
        proxyConnections[p].lastClientIO = now
        if proxyConnections[p].kind == .http {
            transmit(back, toAcceptor: true, .data, bytes: proxyConnections[p].headBytes)
            proxyConnections[p].sent += proxyConnections[p].headBytes
        } else {
            if proxyConnections[p].pending > 0 {
                transmit(back, toAcceptor: true, .data, bytes: proxyConnections[p].pending)
                proxyConnections[p].sent += proxyConnections[p].pending
                proxyConnections[p].pending = 0
            }
            if proxyConnections[p].clientFin { transmit(back, toAcceptor: true, .fin) }
        }
        scheduleIdle(p)
    }

    mutating func backConnectFailed(_ p: Int, reason: String) {
        guard proxyConnections[p].epoch == proxy.epoch, proxy.up, proxyConnections[p].connecting else { return }
        proxyConnections[p].connecting = false
        proxyConnections[p].back = -1
        if proxyConnections[p].kind == .http && proxyConnections[p].finished { return }
        let actions = send(.backendConnectFailed(proxyConnections[p].id, reason: reason))
        if proxyConnections[p].clientClosed {
            finish(p)
        } else {
            carryOut(p, actions)
        }
    }

    /// The backend closed (FIN) or reset its side.
    mutating func backendClosed(_ p: Int, reset: Bool) {
        if proxyConnections[p].kind == .http {
            if proxyConnections[p].requestOpen {
                proxyConnections[p].requestOpen = false
                reportBytes(p)
                send(.requestFinished(proxyConnections[p].id, .failed(status: 502, reason: reset ? "backend reset" : "backend closed")))
                respond(p, status: 502)
            }
            return
        }
        proxyConnections[p].backendFin = true
        if reset {
            closeFront(p)
            return finish(p)
        }
        if !proxyConnections[p].clientClosed {
            transmit(Int(proxyConnections[p].front), toAcceptor: false, .fin)
        }
        if proxyConnections[p].clientFin || proxyConnections[p].clientClosed {
            closeBack(p)
            finish(p)
        }
    }

    mutating func frontSegment(_ p: Int, _ kind: Segment, bytes: Int) {
        guard proxyConnections[p].epoch == proxy.epoch, proxy.up, !proxyConnections[p].clientClosed else { return }
        proxyConnections[p].lastClientIO = now
        switch kind {
        case .data:
            if proxyConnections[p].kind == .http {
                guard !proxyConnections[p].requestStarted else { return }
                proxyConnections[p].requestStarted = true
                proxyConnections[p].headBytes = bytes
                let client = Int(proxyConnections[p].tag)
                let request = HTTPRequest(
                    host: clients[client].hostHeader, uri: "/", key: hosts[Int(clients[client].host)].key)
                return carryOut(p, send(.requestReceived(proxyConnections[p].id, request)))
            }
            if proxyConnections[p].glued {
                proxyConnections[p].lastBackendIO = now
                proxyConnections[p].sent += bytes
                transmit(Int(proxyConnections[p].back), toAcceptor: true, .data, bytes: bytes)
                reportIfDue(p)
            } else {
                proxyConnections[p].pending += bytes
            }
        case .fin:
            proxyConnections[p].clientFin = true
            if proxyConnections[p].kind == .http { return clientLeft(p) }
            if proxyConnections[p].glued {
                transmit(Int(proxyConnections[p].back), toAcceptor: true, .fin)
                if proxyConnections[p].backendFin {
                    closeFront(p)
                    finish(p)
                }
            }
        case .rst:
            clientLeft(p)
        case .syn, .synAck:
            break
        }
    }

    /// The client went away: the backend side is closed too.
    mutating func clientLeft(_ p: Int) {
        proxyConnections[p].clientClosed = true
        tcp[Int(proxyConnections[p].front)].acceptorClosed = true
        if proxyConnections[p].kind == .http {
            // As the HTTP handler does: the request ends at once; a connect
            // still in flight is dropped when it completes.
            finish(p)
            if !proxyConnections[p].connecting { closeBack(p) }
            return
        }
        closeBack(p)
        if !proxyConnections[p].connecting { finish(p) }
    }

    /// Closes the client side (a FIN: the client reads to the end).
    mutating func closeFront(_ p: Int) {
        guard !proxyConnections[p].clientClosed else { return }
        proxyConnections[p].clientClosed = true
        let c = Int(proxyConnections[p].front)
        if !tcp[c].acceptorClosed {
            transmit(c, toAcceptor: false, .fin)
            tcp[c].acceptorClosed = true
        }
    }

    /// Closes the backend side.
    mutating func closeBack(_ p: Int) {
        let c = Int(proxyConnections[p].back)
        guard c >= 0, !tcp[c].initiatorClosed, !proxyConnections[p].connecting else { return }
        transmit(c, toAcceptor: true, .fin)
        tcp[c].initiatorClosed = true
    }

    /// The model turned the client away.
    mutating func closeClient(_ p: Int, _ reason: CloseReason) {
        switch proxyConnections[p].kind {
        case .udp:
            refuseFlow(p, reason)
        case .tcp, .http:
            let tag = Int(proxyConnections[p].tag)
            if tag >= 0 { clients[tag].refusal = reason.kind }
            closeFront(p)
            if !proxyConnections[p].connecting { finish(p) }
        }
    }

    /// An HTTP response to the client, then the connection closes.
    mutating func respond(_ p: Int, status: Int) {
        let tag = Int(proxyConnections[p].tag)
        if tag >= 0 { clients[tag].status = Int32(status) }
        if !proxyConnections[p].clientClosed {
            transmit(Int(proxyConnections[p].front), toAcceptor: false, .data, bytes: 120)
        }
        closeFront(p)
        if !proxyConnections[p].connecting { finish(p) }
    }

    /// The end of a proxied connection: its last byte counts, then the close.
    mutating func finish(_ p: Int) {
        guard !proxyConnections[p].finished else { return }
        proxyConnections[p].finished = true
        guard proxyConnections[p].epoch == proxy.epoch, proxy.up else { return }
        reportBytes(p)
        switch proxyConnections[p].kind {
        case .tcp:
            send(.connectionClosed(proxyConnections[p].id))
        case .http:
            if proxyConnections[p].requestOpen {
                proxyConnections[p].requestOpen = false
                send(.requestFinished(proxyConnections[p].id, .clientGone))
            }
        case .udp:
            send(.connectionClosed(proxyConnections[p].id))
        }
    }

    mutating func reportIfDue(_ p: Int) {
        guard now - proxyConnections[p].lastReport >= Self.reportInterval else { return }
        proxyConnections[p].lastReport = now
        reportBytes(p)
    }

    mutating func reportBytes(_ p: Int) {
        let sent = proxyConnections[p].sent - proxyConnections[p].reportedSent
        let received = proxyConnections[p].received - proxyConnections[p].reportedReceived
        guard sent > 0 || received > 0 else { return }
        proxyConnections[p].reportedSent = proxyConnections[p].sent
        proxyConnections[p].reportedReceived = proxyConnections[p].received
        send(.bytesTransferred(proxyConnections[p].id, sent: sent, received: received))
    }

    // MARK: Idle timeouts

    mutating func scheduleIdle(_ p: Int) {
        let c = proxyConnections[p]
        var due = UInt64.max
        if c.clientTimeout > 0 { due = min(due, c.lastClientIO + c.clientTimeout) }
        if c.serverTimeout > 0 { due = min(due, c.lastBackendIO + c.serverTimeout) }
        guard due != .max else { return }
        if c.idleDue != 0 && c.idleDue <= due { return }  // one already comes first
        proxyConnections[p].idleGeneration &+= 1
        proxyConnections[p].idleDue = due
        queue.push(.idleCheck(connection: Int32(p), generation: proxyConnections[p].idleGeneration), at: due)
    }

    mutating func idleCheck(_ p: Int, generation: UInt32) {
        let c = proxyConnections[p]
        guard c.idleGeneration == generation, !c.finished, c.epoch == proxy.epoch, proxy.up else { return }
        proxyConnections[p].idleDue = 0
        let clientIdle = c.clientTimeout > 0 && now - c.lastClientIO >= c.clientTimeout
        let serverIdle = c.serverTimeout > 0 && now - c.lastBackendIO >= c.serverTimeout
        guard clientIdle || serverIdle else { return scheduleIdle(p) }
        tally("proxy idle timeout")
        if c.kind == .http {
            if c.requestOpen {
                proxyConnections[p].requestOpen = false
                reportBytes(p)
                send(.requestFinished(c.id, .failed(status: 504, reason: "backend timed out")))
                closeBack(p)
                respond(p, status: 504)
            }
            return
        }
        closeBack(p)
        closeFront(p)
        finish(p)
    }

    // MARK: UDP flows

    mutating func proxyDatagram(_ d: Int) {
        let datagram = datagrams[d]
        let request = Int(datagram.request)
        guard proxy.up else { return drop(request: request, lost: true, "proxy down") }
        guard let listener = proxy.ports[portKey(portOf(datagram.to), udp: true)], proxy.udp[listener] != nil else {
            return drop(request: request, lost: false, "no listener")
        }
        var p: Int
        if let existing = proxy.udp[listener]!.flows[datagram.from] {
            p = Int(existing)
        } else {
            p = proxyConnections.count
            var flow = ProxyConnection(kind: .udp, id: ConnectionID(UInt64(p + 1)), epoch: proxy.epoch, tag: requests[request].client)
            flow.client = datagram.from
            flow.listener = listener
            flow.lastActive = now
            proxyConnections.append(flow)
            proxy.live.append(Int32(p))
            proxy.udp[listener]!.flows[datagram.from] = Int32(p)
            proxy.udp[listener]!.order.append(Int32(p))
            carryOut(p, send(.clientConnected(flow.id, listener: listener, key: hosts[hostOf(datagram.from)].key)))
        }
        forward(p, d)
    }

    mutating func forward(_ p: Int, _ d: Int) {
        let request = Int(datagrams[d].request)
        guard !proxyConnections[p].ended else {
            return drop(request: request, lost: false, proxyConnections[p].refusal ?? "flow ended")
        }
        proxyConnections[p].lastActive = now
        if proxyConnections[p].glued {
            writeToBackend(p, d)
        } else if proxyConnections[p].queued.count < Self.maximumQueued {
            proxyConnections[p].queued.append(Int32(d))
        } else {
            drop(request: request, lost: false, "queue full")
        }
    }

    mutating func writeToBackend(_ p: Int, _ d: Int) {
        let datagram = datagrams[d]
        proxyConnections[p].sent += Int(datagram.bytes)
        send(
            datagram: Datagram(
                kind: .toBackend, from: endpoint(Self.proxyHost, 30000 + p % 30000), to: proxyConnections[p].backendEndpoint,
                bytes: datagram.bytes, request: datagram.request, flow: Int32(p)))
    }

    mutating func udpConnected(_ p: Int) {
        guard proxyConnections[p].epoch == proxy.epoch, proxy.up, proxyConnections[p].connecting else { return }
        proxyConnections[p].connecting = false
        send(.backendConnected(proxyConnections[p].id))
        if proxyConnections[p].ended {
            return finish(p)
        }
        proxyConnections[p].glued = true
        let queued = proxyConnections[p].queued
        proxyConnections[p].queued = []
        for d in queued { writeToBackend(p, Int(d)) }
    }

    /// A backend's reply to a flow goes back to its client.
    mutating func flowReply(_ d: Int) {
        let datagram = datagrams[d]
        let p = Int(datagram.flow)
        let request = Int(datagram.request)
        guard proxy.up, proxyConnections[p].epoch == proxy.epoch, !proxyConnections[p].ended else {
            return drop(request: request, lost: true, "flow gone")
        }
        proxyConnections[p].lastActive = now
        proxyConnections[p].received += Int(datagram.bytes)
        send(
            datagram: Datagram(
                kind: .toClient, from: datagrams[d].to, to: proxyConnections[p].client, bytes: datagram.bytes,
                request: datagram.request, flow: Int32(p)))
    }

    /// The model had no backend for the flow: its datagrams are dropped, for that reason.
    mutating func refuseFlow(_ p: Int, _ reason: CloseReason) {
        proxyConnections[p].ended = true
        proxyConnections[p].refusal = reason.kind
        proxyConnections[p].finished = true
        for d in proxyConnections[p].queued { drop(request: Int(datagrams[Int(d)].request), lost: false, reason.kind) }
        proxyConnections[p].queued = []
        removeFlow(p)
    }

    mutating func removeFlow(_ p: Int) {
        guard let listener = proxyConnections[p].listener, proxy.udp[listener] != nil else { return }
        let client = proxyConnections[p].client
        if proxy.udp[listener]!.flows[client] == Int32(p) { proxy.udp[listener]!.flows[client] = nil }
        if let i = proxy.udp[listener]!.order.firstIndex(of: Int32(p)) { proxy.udp[listener]!.order.remove(at: i) }
    }

    /// A flow ends (idle, or its socket closed).
    mutating func endFlow(_ p: Int, socket: Bool) {
        guard !proxyConnections[p].ended else { return }
        proxyConnections[p].ended = true
        if socket { removeFlow(p) }
        for d in proxyConnections[p].queued { drop(request: Int(datagrams[Int(d)].request), lost: false, "flow ended") }
        proxyConnections[p].queued = []
        if !proxyConnections[p].connecting { finish(p) }
    }

    mutating func udpSweep(_ listener: ListenerID, epoch: UInt32) {
        guard epoch == proxy.epoch, proxy.up, let socket = proxy.udp[listener] else { return }
        for flow in socket.order {
            let p = Int(flow)
            if !proxyConnections[p].ended && now - proxyConnections[p].lastActive >= proxyConnections[p].flowTimeout {
                endFlow(p, socket: true)
            }
        }
        queue.push(.udpSweep(listener: listener.raw, epoch: epoch), at: now + seconds(1))
    }

    // MARK: Health checks

    mutating func probe(_ backend: BackendID, generation: UInt32) {
        guard proxy.up, let checker = proxy.checkers[backend], checker.generation == generation else { return }
        guard let destination = resolve(checker.check.address) else {
            // The runtime reports nothing for an address it cannot parse; the check goes on.
            queue.push(.probe(backend: backend.raw, generation: generation), at: now + ms(max(1, checker.check.interval)))
            return
        }
        let i = probes.count
        probes.append(Probe(backend: backend, generation: generation))
        let c = openTCP(.probe(Int32(i)), from: Self.proxyHost, to: hostOf(destination), port: portOf(destination), tag: -1)
        queue.push(.connectTimeout(conn: Int32(c)), at: now + ms(max(1, checker.check.timeout)))
    }

    mutating func probeSegment(_ i: Int, _ kind: Segment) {
        switch kind {
        case .synAck: probeDone(i, passed: true)
        case .rst: probeDone(i, passed: false)
        default: break
        }
    }

    mutating func probeDone(_ i: Int, passed: Bool) {
        guard !probes[i].done else { return }
        probes[i].done = true
        let backend = probes[i].backend
        guard proxy.up, let checker = proxy.checkers[backend], checker.generation == probes[i].generation else { return }
        perform(send(.checkResult(backend, passed: passed)))
        if let still = proxy.checkers[backend], still.generation == checker.generation {
            queue.push(
                .probe(backend: backend.raw, generation: checker.generation), at: now + ms(max(1, checker.check.interval)))
        }
    }

    // MARK: Crash and restart

    /// The proxy process dies: every connection it held is reset, its
    /// sockets and checks are gone; the state file stays.
    mutating func crashProxy() {
        guard proxy.up else { return }
        proxy.up = false
        targets = nil
        for _ in proxy.requests { tally("admin lost: proxy crashed") }
        adminOutstanding -= proxy.requests.count
        for p in proxy.live.map(Int.init) where !proxyConnections[p].finished {
            proxyConnections[p].finished = true
            let connection = proxyConnections[p]
            touch(connection.tag)
            if connection.front >= 0 { reset(Int(connection.front), fromInitiator: false) }
            if connection.back >= 0 { reset(Int(connection.back), fromInitiator: true) }
            for d in connection.queued { drop(request: Int(datagrams[Int(d)].request), lost: true, "proxy crashed") }
        }
        proxy.live = []
    }

    /// Starts the proxy process on the config given on its command line.
    mutating func startProxy(initial: Config) {
        submit(.updateConfig(ConfigUpdate(initial)), expect: .valid)
    }

    /// Starts the proxy process again: a fresh model, the state file loaded
    /// as the daemon loads it.
    mutating func restartProxy() {
        guard !proxy.up else { return }
        let seed = random.next()
        epochCounter += 1
        proxy = ProxyProcess(seed: seed)
        proxy.epoch = epochCounter
        targets = nil
        counts.restarts += 1
        let step = TraceStep.restart(seed: seed)
        let time = now
        trace?.append(TimedStep(time: time, step: step))
        _ = checker.observe(step, registry: proxy.registry)
        guard let disk else { return }
        let data = ConfigCoding.encode(disk)
        let decoded = ConfigCoding.decodeConfig(data)
        guard let update = decoded.value, decoded.problems.isEmpty else {
            return fail(Violation(.persistedState, "the state file does not load: \(decoded.problems)"), inModelTrace: false)
        }
        let problems = Validation.validate(update.config)
        guard problems.isEmpty else {
            return fail(Violation(.persistedState, "the state file is not a valid config: \(problems)"), inModelTrace: false)
        }
        proxy.loading = RequestID(proxy.nextRequest)
        submit(.updateConfig(ConfigUpdate(update.config.canonical)), expect: .valid)
    }
}

extension CloseReason {
    /// A short name of the reason, for tallies.
    var kind: String {
        switch self {
        case .noService: return "no service"
        case .noBackend: return "no backend"
        case .allBackendsFailed: return "all backends failed"
        }
    }
}
