#if os(Linux)
import CShuttleSplice
import Glibc
import ShuttleHTTPWire
import ShuttleModel

/// One client of a virtual-host listener on a relay loop (`-http-relay
/// epoll`), over TLS for `-https` (`TLSSession`): the NIO path's
/// `HTTPProxyHandler` without channels. Heads are read in place
/// (`HTTPHeadScanner`) and written for the other side from their bytes (`HTTPHeadWriter`); bodies go through as
/// they came, counted or chunk-scanned to find their end. Requests are
/// handled one at a time: pipelined ones wait in `inbox`. The client is
/// read while its bytes can go somewhere, the backend while the client
/// takes what it sends.
final class HTTPRelayConnection: RelayConnection, @unchecked Sendable {  // confined to its loop's thread
    let frontend: HTTPFrontend
    var driver: Driver { frontend.driver }
    unowned(unsafe) let loop: SpliceLoop
    let state: HTTPRelayLoopState
    let fd: Int32
    let clientIP: String
    /// TLS over the client's socket (`-https`); nil for plain HTTP.
    let tls: TLSSession?
    /// The client's balancing key, hashed once per connection, not per request.
    lazy var balanceKey = BalanceKey(clientIP)
    /// Client bytes not yet handled: the current request's body, or
    /// requests that wait their turn.
    let inbox: ByteQueue
    /// Bytes for the client it has not taken yet.
    let outbox: ByteQueue
    // Unchecked for overlapping access at run time: see `SpliceLoop.reports`.
    @exclusivity(unchecked) var scanner = HTTPHeadScanner(limit: HTTPFrontend.maximumHeadSize)
    @exclusivity(unchecked) var responses = HTTPHeadScanner(limit: HTTPFrontend.maximumHeadSize)
    var exchange: HTTPRelayExchange?
    /// The pipe a large answer's body is spliced through (`+Splice`).
    var bodyPipe: BodyPipe?
    /// The same for a large request body, from the client to the backend.
    var uploadPipe: BodyPipe?
    /// After a 101: bytes go both ways as they are, to and from this backend.
    var tunnel: HTTPRelayBackend?
    /// Close once `outbox` is written.
    var closing = false
    private var closed = false
    var readable = false
    /// The client's end was signalled (RDHUP): still to be read.
    var hangup = false
    var writable = true
    /// The client sent its end.
    var clientEnded = false
    var idleSince: UInt64
    var idleTimeout = UInt64(HTTPProxyHandler.idleTimeout.nanoseconds)

    static let tag: UInt64 = 1
    static let events = UInt32(CSHUTTLE_EPOLLIN | CSHUTTLE_EPOLLOUT | CSHUTTLE_EPOLLRDHUP) | CSHUTTLE_EPOLLET
    /// Client bytes waiting at most (a head's limit, or a body's share).
    static let inboxLimit = HTTPFrontend.maximumHeadSize
    /// Bytes waiting for a slow reader before its writer is no longer read.
    static let outboxLimit = 256 * 1024
    /// How many rounds one pump makes before letting other connections go.
    static let roundsPerTurn = 16

    private init(client: Int32, clientIP: String, tls: TLSSession?, loop: SpliceLoop, frontend: HTTPFrontend) {
        fd = client
        self.clientIP = clientIP
        self.tls = tls
        self.loop = loop
        self.frontend = frontend
        state = loop.httpState
        inbox = ByteQueue(pool: state.blocks)
        outbox = ByteQueue(pool: state.blocks)
        idleSince = loop.now
    }

    /// A client just accepted on `loop`'s thread; over TLS with
    /// `certificates` (`-https`).
    static func start(
        client: Int32, peer: SpliceAddress, certificates: RelayCertificates?, loop: SpliceLoop, frontend: HTTPFrontend
    ) {
        var tls: TLSSession?
        if let certificates {
            tls = TLSSession(fd: client, certificates: certificates)
            guard tls != nil else {
                Glibc.close(client)
                return
            }
        }
        let connection = HTTPRelayConnection(
            client: client, clientIP: peer.ipString, tls: tls, loop: loop, frontend: frontend)
        loop.add(connection)
        guard loop.register(client, events: events, source: connection, tag: tag) else {
            connection.finish()
            return
        }
    }

    // MARK: Events

    override func handle(_ events: UInt32, tag: UInt64, loop: SpliceLoop) {
        guard !closed else { return }
        if events & UInt32(CSHUTTLE_EPOLLIN | CSHUTTLE_EPOLLRDHUP | CSHUTTLE_EPOLLHUP | CSHUTTLE_EPOLLERR) != 0 {
            readable = true
        }
        if events & UInt32(CSHUTTLE_EPOLLRDHUP | CSHUTTLE_EPOLLHUP | CSHUTTLE_EPOLLERR) != 0 { hangup = true }
        if events & UInt32(CSHUTTLE_EPOLLOUT | CSHUTTLE_EPOLLHUP | CSHUTTLE_EPOLLERR) != 0 { writable = true }
        if let tls {
            // OpenSSL may read to write, or write to read.
            if writable && tls.readWaitsForWritable { readable = true }
            if readable && tls.writeWaitsForReadable { writable = true }
        }
        pump()
    }

    /// Moves what can move, in rounds, until nothing does.
    override func pump() {
        if let tls, !tls.established, !shakeHands(tls) { return }
        var rounds = 0
        while !closed && rounds < Self.roundsPerTurn {
            rounds += 1
            var moved = flushClient()
            if closed { return }
            if let tunnel {
                moved = relayTunnel(tunnel) || moved
            } else {
                moved = readClient() || moved
                if closed { return }
                moved = handleClientBytes() || moved
                if closed { return }
                if uploadPipe != nil {
                    moved = spliceRequestBody() || moved
                    if closed { return }
                }
                if let exchange, exchange.attached, let backend = exchange.backend {
                    moved = flushBackend(backend) || moved
                    if closed { return }
                    if bodyPipe != nil {
                        moved = spliceResponseBody(exchange, backend) || moved
                    } else {
                        moved = readBackend(backend) || moved
                        if closed { return }
                        moved = handleBackendBytes() || moved
                    }
                }
            }
            if closing && outbox.isEmpty {
                finish()
                return
            }
            if !moved { return }
        }
        if !closed { loop.pumpAgain(self) }
    }

    /// Writes what waits for the client.
    private func flushClient() -> Bool {
        guard writable, !outbox.isEmpty else { return false }
        let n = send(from: outbox)
        if n > 0 { return true }
        if n < 0 && errno == EAGAIN {
            writable = false
            return false
        }
        // The client is gone.
        clientGone()
        return false
    }

    /// Whether bytes from the client can go anywhere now.
    private var wantsClientBytes: Bool {
        guard !closing, !clientEnded, uploadPipe == nil, inbox.count < Self.inboxLimit else { return false }
        guard let exchange else { return true }
        if exchange.requestEnded || !exchange.isForwarding { return true }
        guard exchange.attached, let backend = exchange.backend else { return false }
        return backend.outbox.count < Self.outboxLimit
    }

    private func readClient() -> Bool {
        guard readable, wantsClientBytes else { return false }
        let n = receive(into: inbox, limit: Self.inboxLimit)
        if n > 0 {
            if !hangup && (tls?.drained ?? inbox.drained) { readable = false }
            return true
        }
        if n < 0 && errno == EAGAIN {
            readable = false
            return false
        }
        if n < 0 && errno == EINTR { return true }
        // The client's end (or an error), as NIO's channels take it: gone.
        // A head it sent whole before it is still answered.
        readable = false
        clientEnded = true
        if exchange != nil || inbox.isEmpty { clientGone() }
        return true
    }

    // MARK: The client's requests

    /// Reads requests' heads and forwards their bodies while that moves
    /// anything: a head and the body after it go to the backend in one write.
    private func handleClientBytes() -> Bool {
        var moved = false
        while !closing && !closed && handleClientStep() { moved = true }
        return moved
    }

    /// Reads the next request's head, or forwards the current one's body.
    private func handleClientStep() -> Bool {
        guard !closing else { return false }
        guard let exchange else {
            guard !inbox.isEmpty else { return false }
            switch scanner.scanRequest(inbox.bytes) {
            case .incomplete:
                if clientEnded { finish() }
                return false
            case .invalid(let problem):
                malformedRequest(problem)
                return true
            case .head(let head):
                startExchange(head)
                return true
            }
        }
        guard !exchange.requestEnded, !inbox.isEmpty else { return false }
        if exchange.isForwarding && !exchange.attached { return false }  // still connecting
        let available = inbox.bytes
        var take = 0
        var ended = false
        switch exchange.framing {
        case .length:
            take = Int(min(exchange.remaining, UInt64(available.count)))
            exchange.remaining -= UInt64(take)
            ended = exchange.remaining == 0
        case .chunked:
            switch exchange.chunks.advance(over: available) {
            case .more: take = available.count
            case .ended(let count):
                take = count
                ended = true
            case .invalid:
                malformedBody(exchange)
                return true
            }
        case .none, .untilClose:
            ended = true
        }
        if exchange.isForwarding, let backend = exchange.backend {
            keepForReplay(UnsafeRawBufferPointer(rebasing: available[0..<take]), in: exchange)
            exchange.bytesSent += take
            inbox.move(take, to: backend.outbox)
            // What is left of a large body goes through a pipe (after what was read).
            if !ended && exchange.framing != .chunked { startUploadSplicing(exchange, backend) }
        } else {
            exchange.discarded += take
            inbox.consume(take)
        }
        if ended {
            exchange.requestEnded = true
            if exchange.isForwarding {
                if exchange.backend != nil { startResponseTimer(exchange) }
            } else if exchange.responseEnded {
                complete(exchange)
            }
        } else if !exchange.isForwarding && exchange.responseEnded && exchange.discarded > HTTPProxyHandler.discardLimit {
            closing = true
        }
        return take > 0 || ended
    }

    /// Keeps what went to the backend for a retry while that is possible.
    func keepForReplay(_ bytes: UnsafeRawBufferPointer, in exchange: HTTPRelayExchange) {
        guard exchange.replay != nil, !exchange.retried else { return }
        if exchange.replay!.count + bytes.count > HTTPProxyHandler.replayLimit {
            exchange.replay = nil
        } else {
            bytes.withMemoryRebound(to: UInt8.self) { exchange.replay!.append(contentsOf: $0) }
        }
    }

    private func startExchange(_ head: HTTPHead) {
        let bytes = inbox.bytes
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
        var forwardedProto: String?
        var agent = ""
        var oldID: String?
        for field in scanner.fields {
            switch field.name.count {
            case 10 where HTTPBytes.equals(bytes, field.name, lowercase: "user-agent"): agent = text(field.value)
            case 12 where HTTPBytes.equals(bytes, field.name, lowercase: "x-request-id"):
                if oldID == nil && !field.value.isEmpty { oldID = text(field.value) }
            case 17 where HTTPBytes.equals(bytes, field.name, lowercase: "x-forwarded-proto"):
                if forwardedProto == nil { forwardedProto = text(field.value) }
            default: break
            }
        }
        let fresh = HeaderRules.hex16(state.requestIDs.next())
        let requestID = oldID.map { "\(fresh).\($0)" } ?? fresh
        var backendHead: [UInt8] = []  // the writer makes its room: one allocation
        HTTPHeadWriter.backendRequest(
            head, fields: scanner.fields, of: bytes, clientIP: clientIP, isTLS: tls != nil, requestID: requestID,
            into: &backendHead)
        let method = text(head.method)
        let url = text(head.target)
        let request = HTTPRequest(
            host: head.host.map(text), uri: url, isTLS: tls != nil, forwardedProto: forwardedProto, key: balanceKey)
        let exchange = HTTPRelayExchange(
            id: driver.makeConnectionID(), requestID: requestID, started: loop.now, method: method, url: url,
            agent: agent, scanned: head, backendHead: backendHead)
        inbox.consume(head.length)
        self.exchange = exchange
        switch driver.placeRequest(exchange.id, request) {
        case .connect(let target): acquire(target, for: exchange)
        case .answer(let answer): answerLocally(answer, for: exchange)
        }
    }

    /// Carries out the model's actions for this exchange; any other action
    /// goes to the driver.
    func carryOut(_ actions: [Action], for exchange: HTTPRelayExchange) {
        driver.carryOut(
            actions, forRequest: exchange.id, connect: { acquire($0, for: exchange) },
            answer: { answerLocally($0, for: exchange) })
    }

    // MARK: Time

    override func tick(_ now: UInt64) {
        guard !closed else { return }
        if let exchange {
            if let backend = exchange.backend, backend.connectTimedOut(now) {
                let waited = (backend.connectDeadline - backend.connectStarted) / 1_000_000
                backendConnectFailed(backend, reason: "connect timed out after \(waited) ms")
                return
            }
            if exchange.responseDeadline > 0, now >= exchange.responseDeadline, !exchange.responseStarted,
                exchange.isForwarding
            {
                let limit = exchange.target?.serverTimeout ?? 0
                failExchange(exchange, status: 504, reason: "no answer within \(limit) ms")
                pump()
            }
            return
        }
        if tunnel == nil && now - idleSince >= idleTimeout { finish() }
    }

    // MARK: The end

    /// The client went away, or can no longer be written to.
    func clientGone() {
        if let exchange {
            self.exchange = nil
            exchange.responseDeadline = 0
            if let backend = exchange.backend {
                exchange.backend = nil
                backend.close()
            }
            if exchange.error.isEmpty { exchange.error = "the client closed the connection" }
            report(exchange, outcome: .clientGone)
        }
        finish()
    }

    /// Closes the client and its backend; the exchange, if any, is reported gone.
    func finish() {
        guard !closed else { return }
        if let exchange {
            self.exchange = nil
            exchange.backend?.close()
            exchange.backend = nil
            if exchange.error.isEmpty { exchange.error = "the connection closed" }
            report(exchange, outcome: .clientGone)
        }
        closed = true
        releaseBodyPipe()
        releaseUploadPipe()
        tunnel?.close()
        tunnel = nil
        inbox.clear()
        outbox.clear()
        tls?.shutdown()
        Glibc.close(fd)
        loop.remove(self)
    }

    override func abort() {
        finish()
    }
}

#endif
