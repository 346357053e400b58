import Logging
import NIOCore
import NIOHTTP1
import ShuttleModel

/// The proxy's own answers, and the end of every exchange: reporting to the
/// model, the access log, the backend connection back to its pool.
extension HTTPProxyHandler {
    // MARK: Answers without a backend

    /// The model answered the request itself (unknown host, redirect,
    /// maintenance, no backend up, no backend connected).
    func answerLocally(_ answer: HTTPAnswer, for exchange: HTTPExchange) {
        exchange.answeredLocally = true
        exchange.reported = true  // the model counted it when it answered
        let (error, warning) = answer.failure
        exchange.error = error
        if let warning, let service = answer.service {
            warnRequestFailed(exchange, service: service, status: answer.status, reason: warning)
        }
        var headers = HTTPHeaders()
        if case .redirect(_, let location) = answer { headers.add(name: "Location", value: location) }
        log(exchange, status: answer.status, backend: "")
        respond(
            status: HTTPResponseStatus(statusCode: answer.status), service: answer.service,
            defaultBody: Self.defaultBody(answer), headers: headers, exchange: exchange)
    }

    func warnRequestFailed(_ exchange: HTTPExchange, service: String, status: Int, reason: String) {
        driver.warnRequestFailed(
            requestID: exchange.requestID, service: service, backend: exchange.target?.name, status: status, reason: reason)
    }

    /// Our own 502 or 504 after a backend was chosen: reported as a failure
    /// of that backend, logged with the reason.
    func failExchange(_ exchange: HTTPExchange, status: HTTPResponseStatus, reason: String) {
        exchange.responseDeadline = nil
        exchange.error = reason
        releaseBackend(of: exchange, reusable: false)
        exchange.answeredLocally = true
        warnRequestFailed(exchange, service: exchange.target?.service ?? "", status: Int(status.code), reason: reason)
        exchange.status = Int(status.code)
        report(exchange, outcome: .failed(status: Int(status.code), reason: reason))
        respond(
            status: status, service: exchange.target?.service, defaultBody: status.reasonPhrase + "\n",
            headers: HTTPHeaders(), exchange: exchange)
    }

    /// Writes a whole answer: the service's error page for this status if
    /// it has one, else a short text.
    private func respond(
        status: HTTPResponseStatus, service: String?, defaultBody: String, headers extra: HTTPHeaders,
        exchange: HTTPExchange
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
        // An upgrade request leaves the decoder stopped; a request whose body
        // the client holds back for a 100 Continue will not come.
        if exchange.asksUpgrade || (exchange.expectsContinue && !exchange.requestEnded) { exchange.keepAlive = false }
        if !exchange.keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        exchange.status = Int(status.code)
        exchange.responseStarted = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: exchange.head.version, status: status, headers: headers))), promise: nil)
        if exchange.head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        endResponse(exchange, trailers: nil)
    }

    /// The page's own headers with a length that fits it (the original kept
    /// the backend's length: a longer page was cut, a shorter one hung).
    func pageHeaders(_ page: ErrorPages.Page, requestID: String, backend: String?) -> HTTPHeaders {
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

    // MARK: Endings

    /// Ends the answer, then hands on a pipelined request that waited for it.
    func endResponse(_ exchange: HTTPExchange, trailers: HTTPHeaders?) {
        exchange.responseEnded = true
        exchange.responseDeadline = nil
        var close = !exchange.keepAlive
        if exchange.requestEnded {
            complete(exchange)
        } else {
            // The answer came before the whole request: its backend cannot be
            // reused; the rest of the body is read and dropped, unless the
            // client holds it back for a 100 Continue that never came.
            releaseBackend(of: exchange, reusable: false)
            report(exchange, outcome: .responded(status: exchange.status))
            if exchange.expectsContinue && !exchange.informationalSent { close = true }
        }
        if close {
            closing = true
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            deliverQueued()
            resumeClient()
        }
    }

    /// Both the request and its answer are done.
    func complete(_ exchange: HTTPExchange) {
        guard self.exchange === exchange else { return }
        releaseBackend(of: exchange, reusable: true)
        report(exchange, outcome: .responded(status: exchange.status))
        self.exchange = nil
        if exchange.keepAlive && !closing { armIdleTimer() }
    }

    /// Tells the model what it needs no actions for, when the loop's turn
    /// ends (see `HTTPFrontend.LoopState`).
    func tellModel(_ report: ModelReport) {
        if let loopState {
            loopState.report(report, driver: driver)
        } else {
            driver.report([report])
        }
    }

    /// Tells the model how a placed request ended and writes the access log
    /// line, once per exchange.
    func report(_ exchange: HTTPExchange, outcome: RequestOutcome) {
        guard !exchange.reported else { return }
        exchange.reported = true
        tellModel(.requestServed(exchange.id, sent: exchange.bytesSent, received: exchange.bytesReceived, outcome))
        exchange.bytesSent = 0
        exchange.bytesReceived = 0
        if let service = exchange.target?.service {
            let nanoseconds = (NIODeadline.now() - exchange.started).nanoseconds
            if let loopState {
                loopState.recordRequest(service: service, nanoseconds: nanoseconds, driver: driver)
            } else {
                driver.metrics.recordRequest(service: service, nanoseconds: nanoseconds)
            }
        }
        log(exchange, status: exchange.status, backend: exchange.target?.address ?? "")
    }

    func log(_ exchange: HTTPExchange, status: Int, backend: String) {
        frontend.accessLog.log(
            AccessLog.Entry(
                id: exchange.requestID, method: exchange.head.method.rawValue, clientIP: clientIP ?? "",
                url: exchange.head.uri, backend: backend, status: status,
                duration: Double((NIODeadline.now() - exchange.started).nanoseconds) / 1e9,
                agent: exchange.head.headers.first(name: "user-agent") ?? "", error: exchange.error))
    }
}
