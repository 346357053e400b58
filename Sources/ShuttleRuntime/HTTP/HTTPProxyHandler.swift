import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ShuttleModel

/// One client connection of a virtual-host listener. Requests come one at a
/// time (NIO's pipelining handler holds back the next until this one is
/// answered); each is routed and placed by the model, then streamed to a
/// pooled backend connection and its response streamed back, both ways
/// with backpressure: the client is read only while the backend can take
/// more, the backend only while the client can.
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, BackendConnectionDelegate, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Time to wait for a first or next request on an idle connection when
    /// the service sets no `client_timeout`.
    static let idleTimeout = TimeAmount.seconds(60)
    /// Request bodies up to this size are kept for one retry on a fresh
    /// connection when a reused one fails.
    static let retryBodyLimit = 64 * 1024

    let frontend: HTTPFrontend
    let isTLS: Bool
    var driver: Driver { frontend.driver }
    /// The HTTP codec handlers, removed when a connection is upgraded.
    var codecHandlers: [any RemovableChannelHandler] = []

    private var context: ChannelHandlerContext!
    private var exchange: Exchange?
    private var pendingRead = false
    private var idleTimer: Scheduled<Void>?
    private var idleTimeout = HTTPProxyHandler.idleTimeout
    private var clientIP: String?
    private var upgraded = false

    init(frontend: HTTPFrontend, isTLS: Bool) {
        self.frontend = frontend
        self.isTLS = isTLS
    }

    /// One request and its response.
    final class Exchange {
        let id: ConnectionID
        let head: HTTPRequestHead
        let requestID: String
        let started = NIODeadline.now()
        let keepAlive: Bool
        var target: BackendTarget?
        var backend: BackendConnection?
        var reused = false
        var retried = false
        /// Parts waiting for a backend connection.
        var waiting: [HTTPClientRequestPart] = []
        /// Everything sent, kept for a retry while small enough.
        var sent: [HTTPClientRequestPart]? = []
        var sentBytes = 0
        var requestEnded = false
        var answeredLocally = false
        var responseHead: HTTPResponseHead?
        var responseEnded = false
        var replacingPage: ErrorPages.Page?
        var timeout: Scheduled<Void>?
        var bytesSent = 0
        var bytesReceived = 0
        var error = ""
        var upgrading = false

        init(id: ConnectionID, head: HTTPRequestHead, requestID: String) {
            self.id = id
            self.head = head
            self.requestID = requestID
            keepAlive = head.isKeepAlive
        }
    }

    // MARK: Client side

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientIP = context.channel.remoteAddress?.ipAddress
        if context.channel.isActive { armIdleTimer() }
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            idleTimer?.cancel()
            startExchange(head)
        case .body(let body):
            guard let exchange else { return }
            exchange.bytesSent += body.readableBytes
            forward(.body(.byteBuffer(body)), in: exchange)
        case .end(let trailers):
            guard let exchange else { return }
            exchange.requestEnded = true
            forward(.end(trailers), in: exchange)
            if exchange.backend != nil { startResponseTimer(exchange) }
            finishIfDone(exchange)
        }
    }

    func read(context: ChannelHandlerContext) {
        if canReadClient {
            context.read()
        } else {
            pendingRead = true
        }
    }

    /// The client is read while idle, while a request is answered locally
    /// (its body is dropped), and while its backend can take more.
    private var canReadClient: Bool {
        guard let exchange else { return true }
        if exchange.answeredLocally { return true }
        guard let backend = exchange.backend else { return false }
        return backend.isWritable
    }

    private func resumeClient() {
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
        if let exchange {
            self.exchange = nil
            exchange.timeout?.cancel()
            exchange.backend?.delegate = nil
            if !exchange.responseEnded { exchange.backend?.close() }
            if !exchange.answeredLocally {
                reportBytes(exchange)
                driver.send(.requestFinished(exchange.id, .clientGone))
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func armIdleTimer() {
        idleTimer?.cancel()
        idleTimer = context.eventLoop.scheduleTask(in: idleTimeout) { [weak self] in
            guard let self, self.exchange == nil else { return }
            self.context.close(promise: nil)
        }
    }

    // MARK: Routing and placing

    private func startExchange(_ head: HTTPRequestHead) {
        let exchange = Exchange(id: driver.makeConnectionID(), head: head, requestID: HeaderRules.requestID(for: head))
        self.exchange = exchange
        let request = HTTPRequest(
            host: head.headers["host"].first, uri: head.uri, isTLS: isTLS,
            forwardedProto: head.headers["x-forwarded-proto"].first, key: BalanceKey(clientIP ?? ""))
        carryOut(driver.send(.requestReceived(exchange.id, request)), for: exchange)
    }

    private func carryOut(_ actions: [Action], for exchange: Exchange) {
        for action in actions {
            switch action {
            case .connectBackend(let id, let target) where id == exchange.id:
                acquire(target, for: exchange)
            case .answerRequest(let id, let answer) where id == exchange.id:
                answerLocally(answer, for: exchange)
            default:
                driver.perform(action)
            }
        }
    }

    private func acquire(_ target: BackendTarget, for exchange: Exchange, fresh: Bool = false) {
        exchange.target = target
        if target.clientTimeout > 0 { idleTimeout = .milliseconds(Int64(target.clientTimeout)) }
        if !fresh, let pooled = frontend.pool(for: context.eventLoop)?.take(target.id) {
            exchange.reused = true
            attach(pooled, to: exchange, newlyPlaced: true)
            return
        }
        let loop = context.eventLoop
        BackendConnection.connect(to: target, on: loop).whenComplete { result in
            guard self.exchange === exchange else {
                // The client went away while connecting.
                if case .success(let connection) = result { connection.close() }
                return
            }
            switch result {
            case .success(let connection):
                exchange.reused = false
                self.attach(connection, to: exchange, newlyPlaced: !exchange.retried)
            case .failure(let error):
                exchange.error = Driver.describe(error)
                self.driver.logger.info(
                    "backend connect failed",
                    metadata: ["service": "\(target.service)", "backend": "\(target.name)", "error": "\(error)"])
                if exchange.retried {
                    self.failExchange(exchange, status: .badGateway, reason: "retry: \(exchange.error)")
                } else {
                    self.carryOut(self.driver.send(.backendConnectFailed(exchange.id, reason: exchange.error)), for: exchange)
                }
            }
        }
    }

    private func attach(_ connection: BackendConnection, to exchange: Exchange, newlyPlaced: Bool) {
        if newlyPlaced { driver.send(.backendConnected(exchange.id)) }
        exchange.backend = connection
        connection.delegate = self
        connection.canRead = { [weak self] in self?.context?.channel.isWritable ?? false }
        connection.requestsSent += 1
        let head = HeaderRules.backendRequest(
            exchange.head, clientIP: clientIP, isTLS: isTLS, requestID: exchange.requestID)
        exchange.upgrading = HeaderRules.isUpgrade(exchange.head)
        var parts: [HTTPClientRequestPart] = [.head(head)]
        if let sent = exchange.sent, sent.count > 1 {
            parts += sent.dropFirst()  // a retry: the body parts sent before
        }
        parts += exchange.waiting
        exchange.waiting.removeAll()
        exchange.sent = HeaderRules.isIdempotent(exchange.head.method) ? [] : nil
        for part in parts { send(part, in: exchange) }
        connection.flush()
        connection.resumeReading()
        if exchange.requestEnded { startResponseTimer(exchange) }
        resumeClient()
    }

    private func send(_ part: HTTPClientRequestPart, in exchange: Exchange) {
        guard let backend = exchange.backend else { return }
        if var kept = exchange.sent {
            if case .body(.byteBuffer(let b)) = part { exchange.sentBytes += b.readableBytes }
            if exchange.sentBytes > Self.retryBodyLimit {
                exchange.sent = nil
            } else {
                kept.append(part)
                exchange.sent = kept
            }
        }
        backend.write(part)
    }

    private func forward(_ part: HTTPClientRequestPart, in exchange: Exchange) {
        if exchange.answeredLocally { return }
        if exchange.backend == nil {
            exchange.waiting.append(part)
        } else {
            send(part, in: exchange)
            exchange.backend?.flush()
        }
    }

    private func startResponseTimer(_ exchange: Exchange) {
        guard let target = exchange.target, target.serverTimeout > 0, exchange.responseHead == nil,
            exchange.timeout == nil
        else { return }
        exchange.timeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(target.serverTimeout))) {
            [weak self] in
            guard let self, self.exchange === exchange, exchange.responseHead == nil else { return }
            exchange.backend?.delegate = nil
            exchange.backend?.close()
            self.failExchange(exchange, status: .gatewayTimeout, reason: "no answer within \(target.serverTimeout) ms")
        }
    }

    // MARK: Backend side

    func backend(_ connection: BackendConnection, received part: HTTPClientResponsePart) {
        guard let exchange, exchange.backend === connection else { return }
        switch part {
        case .head(let head):
            if head.status.code < 200 && head.status != .switchingProtocols {
                // 100 Continue and friends go straight through.
                context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
                return
            }
            exchange.timeout?.cancel()
            exchange.responseHead = head
            let service = exchange.target?.service ?? ""
            var out = HeaderRules.clientResponse(
                head, version: exchange.head.version, requestID: exchange.requestID, backend: connection.address)
            if let page = frontend.errorPages.page(service: service, status: Int(head.status.code)) {
                exchange.replacingPage = page
                out.headers = pageHeaders(page, requestID: exchange.requestID, backend: connection.address)
            }
            if !exchange.keepAlive { out.headers.replaceOrAdd(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(out)), promise: nil)
        case .body(let body):
            exchange.bytesReceived += body.readableBytes
            if exchange.replacingPage == nil {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
        case .end(let trailers):
            if let page = exchange.replacingPage {
                context.write(wrapOutboundOut(.body(.byteBuffer(page.body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            }
            exchange.responseEnded = true
            if exchange.upgrading && exchange.responseHead?.status == .switchingProtocols {
                upgrade(exchange, connection)
                return
            }
            finishIfDone(exchange)
        }
    }

    func backendClosed(_ connection: BackendConnection, error: (any Error)?) {
        guard let exchange, exchange.backend === connection, !exchange.responseEnded else { return }
        exchange.timeout?.cancel()
        let reason = error.map { Driver.describe($0) } ?? "the backend closed the connection"
        if exchange.responseHead == nil {
            // Nothing came back: retry once on a fresh connection if this one
            // was reused and the request can be sent again.
            if exchange.reused && !exchange.retried && exchange.sent != nil, let target = exchange.target {
                exchange.retried = true
                exchange.backend = nil
                exchange.timeout = nil
                acquire(target, for: exchange, fresh: true)
                return
            }
            failExchange(exchange, status: .badGateway, reason: reason)
        } else {
            // Part of the response went out: the client can only be told by a close.
            exchange.error = reason
            finish(exchange, outcome: .failed(status: Int(exchange.responseHead!.status.code), reason: reason))
            context.close(promise: nil)
        }
    }

    func backendWritabilityChanged(_ connection: BackendConnection) {
        if connection.isWritable { resumeClient() }
    }

    // MARK: Answers and endings

    private func answerLocally(_ answer: HTTPAnswer, for exchange: Exchange) {
        exchange.answeredLocally = true
        var headers = HTTPHeaders()
        if case .redirect(_, let location) = answer { headers.add(name: "Location", value: location) }
        respond(
            status: HTTPResponseStatus(statusCode: answer.status), service: answer.service,
            defaultBody: Self.defaultBody(answer), headers: headers, exchange: exchange)
        if case .allBackendsFailed(_, let lastError) = answer { exchange.error = lastError }
        exchange.responseEnded = true
        log(exchange, status: answer.status, backend: "")
        resumeClient()
        finishIfDone(exchange)
    }

    /// Our own 502 or 504 after a backend was chosen.
    private func failExchange(_ exchange: Exchange, status: HTTPResponseStatus, reason: String) {
        exchange.error = reason
        exchange.backend?.delegate = nil
        exchange.backend?.close()
        exchange.backend = nil
        driver.logger.warning(
            "request failed",
            metadata: [
                "request_id": "\(exchange.requestID)", "service": "\(exchange.target?.service ?? "")",
                "backend": "\(exchange.target?.name ?? "")", "status": "\(status.code)", "reason": "\(reason)",
            ])
        respond(
            status: status, service: exchange.target?.service, defaultBody: status.reasonPhrase + "\n",
            headers: HTTPHeaders(), exchange: exchange)
        exchange.responseEnded = true
        exchange.answeredLocally = true
        reportBytes(exchange)
        driver.send(.requestFinished(exchange.id, .failed(status: Int(status.code), reason: reason)))
        log(exchange, status: Int(status.code), backend: exchange.target?.address ?? "")
        resumeClient()
        finishIfDone(exchange)
    }

    private func respond(
        status: HTTPResponseStatus, service: String?, defaultBody: String, headers extra: HTTPHeaders,
        exchange: Exchange
    ) {
        var headers: HTTPHeaders
        let body: ByteBuffer
        if let service, let page = frontend.errorPages.page(service: service, status: Int(status.code)) {
            headers = pageHeaders(page, requestID: exchange.requestID, backend: nil)
            body = page.body
        } else {
            headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "X-Request-Id", value: exchange.requestID)
            body = ByteBuffer(string: defaultBody)
            headers.add(name: "Content-Length", value: String(body.readableBytes))
        }
        for (name, value) in extra { headers.replaceOrAdd(name: name, value: value) }
        if !exchange.keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: exchange.head.version, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if exchange.head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The page's own headers with a length that fits it (the original kept
    /// the backend's length: a longer page was cut, a shorter one hung).
    private func pageHeaders(_ page: ErrorPages.Page, requestID: String, backend: String?) -> HTTPHeaders {
        var headers = HTTPHeaders(page.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(page.body.readableBytes))
        headers.replaceOrAdd(name: "X-Request-Id", value: requestID)
        if let backend { headers.replaceOrAdd(name: "X-Backend", value: backend) }
        return headers
    }

    static func defaultBody(_ answer: HTTPAnswer) -> String {
        switch answer {
        case .unknownHost: return "Not found\n"
        case .badRequest(let reason): return "Bad Request: \(reason)\n"
        case .redirect(_, let location): return "Moved Permanently: \(location)\n"
        case .maintenance: return "Service Unavailable: maintenance\n"
        case .noBackend: return "Service Unavailable\n"
        case .allBackendsFailed: return "Bad Gateway\n"
        }
    }

    /// Ends an exchange once both its request and its response are complete.
    private func finishIfDone(_ exchange: Exchange) {
        guard self.exchange === exchange, exchange.responseEnded, exchange.requestEnded else {
            // A response that ended before its request: the client's remaining
            // body cannot be told apart from a next request, so close after it.
            if self.exchange === exchange, exchange.responseEnded, !exchange.answeredLocally {
                finish(exchange, outcome: .responded(status: Int(exchange.responseHead?.status.code ?? 0)))
                context.close(promise: nil)
            }
            return
        }
        if !exchange.answeredLocally {
            finish(exchange, outcome: .responded(status: Int(exchange.responseHead?.status.code ?? 0)))
        }
        self.exchange = nil
        if exchange.keepAlive {
            armIdleTimer()
            resumeClient()
        } else {
            context.close(promise: nil)
        }
    }

    /// Reports the end of a backend exchange and returns its connection.
    private func finish(_ exchange: Exchange, outcome: RequestOutcome) {
        guard self.exchange === exchange else { return }
        exchange.timeout?.cancel()
        if let backend = exchange.backend {
            backend.delegate = nil
            if exchange.responseEnded && exchange.requestEnded, let pool = frontend.pool(for: context.eventLoop) {
                pool.put(backend)
            } else {
                backend.close()
            }
            exchange.backend = nil
        }
        reportBytes(exchange)
        if case .responded(let status) = outcome {
            driver.send(.requestFinished(exchange.id, outcome))
            log(exchange, status: status, backend: exchange.target?.address ?? "")
        } else if case .failed(let status, _) = outcome {
            driver.send(.requestFinished(exchange.id, outcome))
            log(exchange, status: status, backend: exchange.target?.address ?? "")
        }
        if self.exchange === exchange && !exchange.requestEnded { self.exchange = nil }
    }

    private func reportBytes(_ exchange: Exchange) {
        guard exchange.bytesSent > 0 || exchange.bytesReceived > 0 else { return }
        driver.send(.bytesTransferred(exchange.id, sent: exchange.bytesSent, received: exchange.bytesReceived))
        exchange.bytesSent = 0
        exchange.bytesReceived = 0
    }

    private func log(_ exchange: Exchange, status: Int, backend: String) {
        frontend.accessLog.log(
            AccessLog.Entry(
                id: exchange.requestID, method: exchange.head.method.rawValue, clientIP: clientIP ?? "",
                url: exchange.head.uri, backend: backend, status: status,
                duration: Double((NIODeadline.now() - exchange.started).nanoseconds) / 1e9,
                agent: exchange.head.headers["user-agent"].first ?? "", error: exchange.error))
    }

    // MARK: Upgrade

    /// After a 101, both connections become a plain byte stream: the HTTP
    /// codecs leave both pipelines and the two channels are glued.
    private func upgrade(_ exchange: Exchange, _ connection: BackendConnection) {
        finish(exchange, outcome: .responded(status: 101))
        guard let backendChannel = connection.channel else {
            context.close(promise: nil)
            return
        }
        upgraded = true
        self.exchange = nil
        idleTimer?.cancel()
        connection.delegate = nil
        connection.canRead = nil
        let client = context.channel
        let clientSide = GlueHandler()
        let backendSide = GlueHandler()
        let clientCodecs = codecHandlers
        // Remove the client's codecs, then ours; glue once both sides are raw.
        let clientReady = EventLoopFuture.andAllSucceed(
            clientCodecs.map { client.pipeline.syncOperations.removeHandler($0) }, on: client.eventLoop)
        let backendReady = EventLoopFuture.andAllSucceed(
            connection.codecHandlers.map { backendChannel.pipeline.syncOperations.removeHandler($0) },
            on: backendChannel.eventLoop)
        clientReady.and(backendReady).flatMapThrowing { _ in
            try client.pipeline.syncOperations.addHandler(clientSide)
            try client.pipeline.syncOperations.removeHandler(self).whenComplete { _ in }
            try backendChannel.pipeline.syncOperations.addHandler(backendSide)
            try backendChannel.pipeline.syncOperations.removeHandler(connection).whenComplete { _ in }
            backendChannel.closeFuture.whenComplete { _ in client.close(promise: nil) }
            client.closeFuture.whenComplete { _ in backendChannel.close(promise: nil) }
            GlueHandler.pair(clientSide, backendSide)
        }.whenFailure { _ in
            client.close(promise: nil)
            backendChannel.close(promise: nil)
        }
    }
}
