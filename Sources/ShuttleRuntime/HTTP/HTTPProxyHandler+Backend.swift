import Logging
import NIOCore
import NIOHTTP1
import ShuttleModel

/// Placing an exchange on a backend connection, and the backend's answer.
extension HTTPProxyHandler: BackendConnectionDelegate {
    // MARK: Placing

    /// Takes a pooled connection to `target`, or connects a new one
    /// (`fresh`: for the retry, never a pooled one).
    func acquire(_ target: BackendTarget, for exchange: HTTPExchange, fresh: Bool = false) {
        exchange.target = target
        if target.clientTimeout > 0 { idleTimeout = .milliseconds(Int64(target.clientTimeout)) }
        if !fresh, let pooled = frontend.pool(for: context.eventLoop)?.take(target.id) {
            exchange.reused = true
            attach(pooled, to: exchange)
            return
        }
        let connectStarted = NIODeadline.now()
        BackendConnection.connect(to: target, on: context.eventLoop).whenComplete { result in
            if case .success = result {
                self.driver.metrics.recordConnect(
                    service: target.service, backend: target.name,
                    nanoseconds: (NIODeadline.now() - connectStarted).nanoseconds)
            }
            guard self.exchange === exchange, exchange.isForwarding else {
                // The client went away (or was answered) while connecting.
                if case .success(let connection) = result { connection.close() }
                return
            }
            switch result {
            case .success(let connection):
                exchange.reused = false
                self.attach(connection, to: exchange)
            case .failure(let error):
                let reason = Driver.describe(error)
                exchange.error = reason
                self.driver.logConnectFailure(to: target, reason: reason)
                if exchange.retried {
                    self.failExchange(exchange, status: .badGateway, reason: "retry on a new connection failed: \(reason)")
                } else {
                    self.carryOut(self.driver.send(.backendConnectFailed(exchange.id, reason: reason)), for: exchange)
                }
            }
        }
    }

    /// Sends the request on `connection`: its head, what was sent before
    /// (a retry), and what arrived while connecting.
    func attach(_ connection: BackendConnection, to exchange: HTTPExchange) {
        if !exchange.retried { tellModel(.event(.backendConnected(exchange.id))) }
        exchange.backend = connection
        connection.delegate = self
        connection.canRead = { [weak self] in self?.context?.channel.isWritable ?? false }
        connection.requestsSent += 1
        if exchange.retried, let replay = exchange.replay {
            for part in replay { connection.write(part) }
        } else {
            let head = HeaderRules.backendRequest(
                exchange.head, clientIP: clientIP, isTLS: isTLS, requestID: exchange.requestID)
            send(.head(head), in: exchange)
        }
        let waiting = exchange.waiting
        exchange.waiting.removeAll()
        for part in waiting { send(part, in: exchange) }
        // While the client's head is being read, the rest of the request
        // (its end or first body part) follows in the same read and flushes
        // it all in one write; a client waiting for 100 Continue needs the head now.
        if !deliveringHead || exchange.expectsContinue || exchange.requestEnded { connection.flush() }
        connection.resumeReading()
        if exchange.requestEnded || exchange.expectsContinue { startResponseTimer(exchange) }
        resumeClient()
    }

    /// Writes a part to the backend, keeping it for a retry while that is possible.
    func send(_ part: HTTPClientRequestPart, in exchange: HTTPExchange) {
        guard let backend = exchange.backend else { return }
        if exchange.replay != nil {
            if case .body(.byteBuffer(let bytes)) = part { exchange.replayBytes += bytes.readableBytes }
            if exchange.replayBytes > Self.replayLimit {
                exchange.replay = nil
            } else {
                exchange.replay!.append(part)
            }
        }
        backend.write(part)
    }

    /// A part read from the client: sent on, or kept until a backend is attached.
    func forward(_ part: HTTPClientRequestPart, in exchange: HTTPExchange) {
        if exchange.backend == nil {
            exchange.waiting.append(part)
        } else {
            send(part, in: exchange)
            exchange.backend?.flush()
        }
    }

    /// `server_timeout`: the time the backend has to start its answer once
    /// the request is sent (or, with `Expect: 100-continue`, to say go on).
    /// One timer per connection serves every request: it is moved only
    /// when it would fire too late, and when it fires early it looks at the
    /// exchange's deadline and waits for the rest (a timer scheduled and
    /// cancelled per request was a seventh of a request's allocations).
    func startResponseTimer(_ exchange: HTTPExchange) {
        guard let target = exchange.target, target.serverTimeout > 0, exchange.responseHead == nil,
            exchange.responseDeadline == nil, exchange.backend != nil
        else { return }
        let deadline = NIODeadline.now() + .milliseconds(Int64(target.serverTimeout))
        exchange.responseDeadline = deadline
        armResponseTimer(at: deadline)
    }

    /// Takes the backend connection off the exchange: back to the pool if it
    /// finished a whole request and answer, else closed.
    func releaseBackend(of exchange: HTTPExchange, reusable: Bool) {
        guard let backend = exchange.backend else { return }
        exchange.backend = nil
        backend.delegate = nil
        backend.canRead = nil
        if reusable, let pool = frontend.pool(for: context.eventLoop) {
            pool.put(backend)
        } else {
            backend.close()
        }
    }

    // MARK: The backend's answer

    func backend(_ connection: BackendConnection, received part: HTTPClientResponsePart) {
        guard let exchange, exchange.backend === connection, !exchange.answeredLocally else { return }
        switch part {
        case .head(let head) where head.status.code < 200 && head.status != .switchingProtocols:
            // 100 Continue and other interim answers go straight through.
            exchange.informationalSent = true
            if !exchange.requestEnded {
                // The client sends its body now; the clock restarts at its end.
                exchange.responseDeadline = nil
            }
            var interim = HeaderRules.clientResponse(
                head, version: exchange.head.version, requestID: exchange.requestID, backend: connection.address)
            _ = HeaderRules.frameResponse(&interim, requestMethod: exchange.head.method)
            context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
        case .head(let head):
            exchange.responseDeadline = nil
            exchange.responseHead = head
            exchange.status = Int(head.status.code)
            startAnswer(head, from: connection, in: exchange)
        case .body(let body):
            exchange.bytesReceived += body.readableBytes
            if exchange.replacingPage == nil {
                // Flushed when the backend's read ends (or with the answer's end).
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                clientFlushPending = true
            }
        case .end(let trailers):
            if exchange.asksUpgrade && exchange.responseHead?.status == .switchingProtocols {
                upgrade(exchange, connection)
                return
            }
            if let page = exchange.replacingPage, exchange.head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(page.body))), promise: nil)
            }
            endResponse(exchange, trailers: exchange.replacingPage == nil ? trailers : nil)
        }
    }

    /// Writes the head of the backend's answer, or of the error page that replaces it.
    private func startAnswer(_ head: HTTPResponseHead, from connection: BackendConnection, in exchange: HTTPExchange) {
        var out = HeaderRules.clientResponse(
            head, version: exchange.head.version, requestID: exchange.requestID, backend: connection.address)
        if head.status != .switchingProtocols, let service = exchange.target?.service,
            let page = frontend.errorPages.page(service: service, status: Int(head.status.code))
        {
            exchange.replacingPage = page
            out.headers = pageHeaders(page, requestID: exchange.requestID, backend: connection.address)
        }
        let delimited = HeaderRules.frameResponse(&out, requestMethod: exchange.head.method)
        let upgrading = exchange.asksUpgrade && head.status == .switchingProtocols
        if !delimited || (exchange.asksUpgrade && !upgrading) { exchange.keepAlive = false }
        if !exchange.keepAlive && !upgrading { out.headers.replaceOrAdd(name: "Connection", value: "close") }
        exchange.responseStarted = true
        context.write(wrapOutboundOut(.head(out)), promise: nil)
        clientFlushPending = true
    }

    func backendClosed(_ connection: BackendConnection, error: (any Error)?) {
        guard let exchange, exchange.backend === connection, exchange.isForwarding else { return }
        let reason = error.map { Driver.describe($0) } ?? "the backend closed the connection"
        if exchange.responseHead == nil && !exchange.informationalSent {
            // Nothing came back. A reused connection may have been closed by
            // the backend as it went idle: send the request once more on a
            // fresh one, if it may be sent twice and all of it was kept.
            let garbled = error is HTTPParserError
            if exchange.reused && !exchange.retried && !garbled && exchange.replay != nil, let target = exchange.target {
                driver.logger.debug(
                    "retrying on a new connection",
                    metadata: ["request_id": "\(exchange.requestID)", "backend": "\(target.name)", "reason": "\(reason)"])
                exchange.retried = true
                exchange.responseDeadline = nil
                releaseBackend(of: exchange, reusable: false)
                acquire(target, for: exchange, fresh: true)
                return
            }
            failExchange(exchange, status: .badGateway, reason: reason)
        } else {
            // Part of the answer went out: only a close can tell the client,
            // after what arrived before the backend's end is sent on.
            exchange.error = reason
            releaseBackend(of: exchange, reusable: false)
            report(exchange, outcome: .failed(status: exchange.status, reason: reason))
            self.exchange = nil
            closing = true
            if clientFlushPending {
                clientFlushPending = false
                context.flush()
            }
            context.close(promise: nil)
        }
    }

    /// The backend's read ended: what it brought goes to the client in one write.
    func backendReadComplete(_ connection: BackendConnection) {
        guard clientFlushPending, exchange?.backend === connection else { return }
        clientFlushPending = false
        context.flush()
    }

    func backendWritabilityChanged(_ connection: BackendConnection) {
        if connection.isWritable { resumeClient() }
    }
}
