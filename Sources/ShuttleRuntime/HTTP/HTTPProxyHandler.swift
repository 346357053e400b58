import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ShuttleModel

/// One client connection of a virtual-host listener. Requests are handled
/// one at a time: parts of a pipelined request that come while an earlier
/// one is still answered wait their turn in `queued` (and the client is not
/// read while any wait). Each request is routed and placed by the model,
/// then streamed to a pooled backend connection and its answer streamed
/// back, both ways with backpressure: the client is read only while the
/// backend can take more, the backend only while the client can.
///
/// (Not NIO's HTTPServerPipelineHandler: it stops reading the client while
/// every answer is awaited and starts again after it, two epoll_ctl calls
/// per request, a tenth of a keep-alive request's system calls.)
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {  // confined to its event loop
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Time to wait for a first or next request on an idle connection when
    /// the service sets no `client_timeout`.
    static let idleTimeout = TimeAmount.seconds(60)
    /// Request bodies up to this size are kept for one retry on a fresh
    /// connection when a reused one fails.
    static let replayLimit = 64 * 1024
    /// Body bytes of a request answered before it ended that are read and
    /// dropped to keep the connection; past this, it is closed instead.
    static let discardLimit = 256 * 1024

    let frontend: HTTPFrontend
    let isTLS: Bool
    var driver: Driver { frontend.driver }
    /// The HTTP codec handlers, removed when the connection is upgraded.
    var codecHandlers: [any RemovableChannelHandler] = []

    var context: ChannelHandlerContext!
    var exchange: HTTPExchange?
    private var pendingRead = false
    /// Parts of pipelined requests waiting for the answer before them;
    /// `queued[queuedStart...]` are still to be handled.
    private var queued: [HTTPServerRequestPart] = []
    private var queuedStart = 0
    /// Waiting parts are being handled (handling one can end an answer,
    /// which hands on the next: a loop, not a recursion).
    private var deliveringQueued = false
    /// The connection's idle timer, and its response timer (see
    /// `startResponseTimer`): each made when first armed.
    var idleTimer: ConnectionTimer?
    private var responseTimer: ConnectionTimer?
    /// Since when the connection is idle.
    private var idleSince = NIODeadline.now()
    var idleTimeout = HTTPProxyHandler.idleTimeout
    private(set) var clientIP: String? {
        didSet { balanceKey = nil }
    }
    /// The client's balancing key, hashed once per connection, not per request.
    private var balanceKey: BalanceKey?
    /// The connection closes after the answer being written: requests that
    /// still arrive are ignored.
    var closing = false
    /// Parts of an answer were written to the client and not yet flushed.
    var clientFlushPending = false
    /// A request's head is being handled: writes to its backend wait for
    /// the rest of the request, so that they go out together.
    var deliveringHead = false

    /// What the connection's event loop keeps to itself, looked up once
    /// (and kept after the handler is removed).
    var loopState: HTTPFrontend.LoopState?

    init(frontend: HTTPFrontend, isTLS: Bool) {
        self.frontend = frontend
        self.isTLS = isTLS
    }

    // MARK: The client's side

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loopState = frontend.state(of: context.eventLoop)
        clientIP = context.channel.remoteAddress?.ipAddress
        if context.channel.isActive { armIdleTimer() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.stop()
        idleTimer = nil
        responseTimer?.stop()
        responseTimer = nil
        // The context holds this handler: keeping it (or the codec
        // handlers) past removal would keep the whole pipeline alive, about
        // 2.7 KiB leaked for every connection.
        self.context = nil
        codecHandlers = []
        queued = []
        queuedStart = 0
    }

    func channelActive(context: ChannelHandlerContext) {
        clientIP = context.channel.remoteAddress?.ipAddress
        armIdleTimer()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        // Once a request has ended, what follows belongs to the next one,
        // which waits until this one is answered.
        if queuedStart < queued.count || exchange?.requestEnded == true {
            if !closing { queued.append(part) }
            return
        }
        handle(part)
    }

    /// Hands on the parts that waited for the exchange that just ended, up
    /// to the end of the next request that must wait for its own answer.
    func deliverQueued() {
        guard !deliveringQueued else { return }
        deliveringQueued = true
        defer { deliveringQueued = false }
        while queuedStart < queued.count {
            if closing || context == nil {
                queued = []
                queuedStart = 0
                return
            }
            if exchange?.requestEnded == true { return }
            let part = queued[queuedStart]
            queuedStart += 1
            handle(part)
        }
        // Freed: a client that pipelined thousands of requests once does
        // not keep room for them.
        queued = []
        queuedStart = 0
    }

    private func handle(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            guard !closing else { return }
            deliveringHead = true
            startExchange(head)
            deliveringHead = false
        case .body(let body):
            guard let exchange else { return }
            if exchange.isForwarding {
                exchange.bytesSent += body.readableBytes
                forward(.body(.byteBuffer(body)), in: exchange)
            } else {
                discard(body.readableBytes, in: exchange)
            }
        case .end(let trailers):
            guard let exchange else { return }
            exchange.requestEnded = true
            if exchange.isForwarding {
                forward(.end(trailers), in: exchange)
                if exchange.backend != nil { startResponseTimer(exchange) }
            } else if exchange.responseEnded {
                // Its answer went out before the request ended; now both are done.
                complete(exchange)
            }
        }
    }

    /// Drops the body of a request that is already answered; a long one
    /// costs the connection rather than reading it all.
    private func discard(_ count: Int, in exchange: HTTPExchange) {
        exchange.discardedBytes += count
        if exchange.responseEnded && exchange.discardedBytes > Self.discardLimit {
            closing = true
            context.close(promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        if canReadClient {
            context.read()
        } else {
            pendingRead = true
        }
    }

    /// The client is read while idle, while its request is answered without
    /// the backend (the rest of the body is dropped), and while its backend
    /// can take more.
    private var canReadClient: Bool {
        guard queuedStart == queued.count else { return false }
        guard let exchange else { return !closing }
        guard exchange.isForwarding else { return true }
        guard let backend = exchange.backend else { return false }
        return backend.isWritable
    }

    func resumeClient() {
        if pendingRead && canReadClient {
            pendingRead = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.backend?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        responseTimer?.cancel()
        if let exchange {
            self.exchange = nil
            exchange.responseDeadline = nil
            if let backend = exchange.backend {
                exchange.backend = nil
                backend.delegate = nil
                backend.close()
            }
            if exchange.error.isEmpty { exchange.error = "the client closed the connection" }
            report(exchange, outcome: .clientGone)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The client's end in the middle of a request (its head or body cut
        // short) is the client leaving, not a malformed request: closed, and
        // an exchange under way is reported gone (`channelInactive`), as the
        // relay does.
        guard let parserError = error as? HTTPParserError, parserError != .invalidEOFState else {
            context.close(promise: nil)
            return
        }
        malformedRequest(parserError)
    }

    /// The connection is idle from now: it closes after `idleTimeout`
    /// unless a request comes. One timer serves many requests: it is moved
    /// only when it would fire too late, and when it fires early it looks
    /// at the time and waits for the rest.
    func armIdleTimer() {
        idleSince = .now()
        let due = idleSince + idleTimeout
        if let armed = idleTimer?.due, armed <= due { return }
        scheduleIdleTimer(at: due)
    }

    private func scheduleIdleTimer(at due: NIODeadline) {
        if idleTimer == nil { idleTimer = ConnectionTimer(.idle, owner: self, loop: context.eventLoop) }
        idleTimer?.schedule(at: due)
    }

    /// Makes sure the response timer fires by `deadline`.
    func armResponseTimer(at deadline: NIODeadline) {
        if let due = responseTimer?.due, due <= deadline { return }
        if responseTimer == nil { responseTimer = ConnectionTimer(.response, owner: self, loop: context.eventLoop) }
        responseTimer?.schedule(at: deadline)
    }

    /// The exchange awaiting an answer past its deadline gets a 504; one
    /// whose deadline is still ahead is waited for.
    func responseTimerFired() {
        guard context != nil, let exchange, let deadline = exchange.responseDeadline, exchange.responseHead == nil,
            exchange.isForwarding
        else { return }
        guard NIODeadline.now() >= deadline else {
            armResponseTimer(at: deadline)
            return
        }
        let limit = exchange.target?.serverTimeout ?? 0
        failExchange(exchange, status: .gatewayTimeout, reason: "no answer within \(limit) ms")
    }

    func idleTimerFired() {
        // Busy: the end of the exchange arms the timer again.
        guard let context, exchange == nil else { return }
        let due = idleSince + idleTimeout
        if NIODeadline.now() < due {
            scheduleIdleTimer(at: due)
            return
        }
        closing = true
        context.close(promise: nil)
    }

    // MARK: Routing

    private func clientKey() -> BalanceKey {
        if let balanceKey { return balanceKey }
        let key = BalanceKey(clientIP ?? "")
        balanceKey = key
        return key
    }

    private func startExchange(_ head: HTTPRequestHead) {
        let exchange = HTTPExchange(id: driver.makeConnectionID(), head: head, requestID: frontend.requestID(for: head, on: context.eventLoop))
        self.exchange = exchange
        let request = HTTPRequest(
            host: head.headers.first(name: "host"), hostFields: HeaderRules.hostFields(head.headers), uri: head.uri,
            isTLS: isTLS,
            forwardedProto: head.headers.first(name: "x-forwarded-proto"), key: clientKey())
        switch driver.placeRequest(exchange.id, request) {
        case .connect(let target): acquire(target, for: exchange)
        case .answer(let answer): answerLocally(answer, for: exchange)
        }
    }

    /// Carries out the model's actions for this exchange; any other action
    /// goes to the driver.
    func carryOut(_ actions: [Action], for exchange: HTTPExchange) {
        driver.carryOut(
            actions, forRequest: exchange.id, connect: { acquire($0, for: exchange) },
            answer: { answerLocally($0, for: exchange) })
    }

    // MARK: Malformed requests

    /// A request the decoder cannot read: 431 for a head over the limit,
    /// 400 for the rest, if no answer has started; then the connection
    /// closes, as the decoder cannot find the next request.
    private func malformedRequest(_ error: HTTPParserError) {
        let status: HTTPResponseStatus = error == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
        let reason = error == .headerOverflow ? "request head over \(HTTPFrontend.maximumHeadSize) bytes" : "malformed request: \(error)"
        if let exchange {
            // The request broke off in its body: its backend cannot finish it.
            exchange.responseDeadline = nil
            releaseBackend(of: exchange, reusable: false)
            exchange.error = reason
            let started = exchange.responseStarted
            report(exchange, outcome: .clientGone)
            self.exchange = nil
            guard !started else {
                context.close(promise: nil)
                return
            }
        } else {
            frontend.accessLog.log(
                AccessLog.Entry(
                    id: "", method: "", clientIP: clientIP ?? "", url: "", backend: "", status: Int(status.code),
                    duration: 0, agent: "", error: reason))
        }
        closing = true
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Connection", value: "close")
        let body = ByteBuffer(string: "\(status.reasonPhrase)\n")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
