#if os(Linux)
import CShuttleSplice
import NIOCore
import NIOHTTP1
import ShuttleHTTPWire
import ShuttleModel

/// The relay's own answers, and the end of every exchange: reporting to the
/// model, the access log, the backend connection back to its pool. The
/// same answers as `HTTPProxyHandler+Answers`, written as bytes.
extension HTTPRelayConnection {
    // MARK: Answers without a backend

    /// The model answered the request itself (unknown host, redirect,
    /// maintenance, no backend up, no backend connected).
    func answerLocally(_ answer: HTTPAnswer, for exchange: HTTPRelayExchange) {
        exchange.answeredLocally = true
        exchange.reported = true  // the model counted it when it answered
        let (error, warning) = answer.failure
        exchange.error = error
        if let warning, let service = answer.service {
            warnRequestFailed(exchange, service: service, status: answer.status, reason: warning)
        }
        var extra: [(String, String)] = []
        if case .redirect(_, let location) = answer { extra.append(("Location", location)) }
        log(exchange, status: answer.status, backend: "")
        respond(
            status: answer.status, service: answer.service, defaultBody: HTTPProxyHandler.defaultBody(answer),
            headers: extra, exchange: exchange)
    }

    func warnRequestFailed(_ exchange: HTTPRelayExchange, service: String, status: Int, reason: String) {
        driver.warnRequestFailed(
            requestID: exchange.requestID, service: service, backend: exchange.target?.name, status: status, reason: reason)
    }

    /// Our own 502 or 504 after a backend was chosen: reported as a failure
    /// of that backend, logged with the reason.
    func failExchange(_ exchange: HTTPRelayExchange, status: Int, reason: String) {
        exchange.responseDeadline = 0
        exchange.error = reason
        releaseBackend(of: exchange, reusable: false)
        exchange.answeredLocally = true
        warnRequestFailed(exchange, service: exchange.target?.service ?? "", status: status, reason: reason)
        exchange.status = status
        report(exchange, outcome: .failed(status: status, reason: reason))
        respond(
            status: status, service: exchange.target?.service,
            defaultBody: HTTPResponseStatus(statusCode: status).reasonPhrase + "\n", headers: [], exchange: exchange)
    }

    /// Writes a whole answer: the service's error page for this status if
    /// it has one, else a short text.
    private func respond(
        status: Int, service: String?, defaultBody: String, headers extra: [(String, String)],
        exchange: HTTPRelayExchange
    ) {
        // An upgrade request leaves what follows unreadable; a request whose
        // body the client holds back for a 100 Continue will not come.
        if exchange.asksUpgrade || (exchange.expectsContinue && !exchange.requestEnded) { exchange.keepAlive = false }
        exchange.status = status
        exchange.responseStarted = true
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        if let service, let page = frontend.errorPages.page(service: service, status: status) {
            writePage(page, status: status, reason: Array(reason.utf8), exchange: exchange, backend: nil, extra: extra)
        } else {
            var headers: [(String, String)] = [
                ("Content-Type", "text/plain; charset=utf-8"), ("X-Request-Id", exchange.requestID),
                ("Content-Length", String(defaultBody.utf8.count)),
            ]
            for (name, value) in extra { headers.append((name, value)) }
            writeHead(status: status, reason: Array(reason.utf8), headers: headers, exchange: exchange)
            if !exchange.isHEAD { outbox.append(Array(defaultBody.utf8)) }
        }
        endResponse(exchange)
    }

    /// The page's own headers with a length that fits it.
    func writePage<Reason: Sequence<UInt8>>(
        _ page: ErrorPages.Page, status: Int, reason: Reason, exchange: HTTPRelayExchange, backend: String?,
        extra: [(String, String)] = []
    ) {
        var headers = page.headers.filter { name, _ in
            let lowered = name.lowercased()
            return lowered != "content-length" && lowered != "x-request-id" && lowered != "x-backend"
                && lowered != "connection" && lowered != "transfer-encoding"
        }
        headers.append(("Content-Length", String(page.body.readableBytes)))
        headers.append(("X-Request-Id", exchange.requestID))
        if let backend { headers.append(("X-Backend", backend)) }
        for (name, value) in extra { headers.append((name, value)) }
        writeHead(status: status, reason: Array(reason), headers: headers, exchange: exchange)
        if !exchange.isHEAD { outbox.append(Array(page.body.readableBytesView)) }
    }

    /// A head for the client, in its version, with `Connection: close`
    /// when the connection ends after the answer.
    private func writeHead(status: Int, reason: [UInt8], headers: [(String, String)], exchange: HTTPRelayExchange) {
        var text = exchange.minorVersion >= 1 ? "HTTP/1.1 " : "HTTP/1.0 "
        text += String(status)
        text += " "
        outbox.append(Array(text.utf8))
        outbox.append(reason)
        var lines = "\r\n"
        for (name, value) in headers { lines += "\(name): \(value)\r\n" }
        if !exchange.keepAlive { lines += "Connection: close\r\n" }
        lines += "\r\n"
        outbox.append(Array(lines.utf8))
    }

    // MARK: Malformed requests

    /// A request the scanner cannot read: 431 for a head over the limit,
    /// 505 for another version, 400 for the rest; then the connection
    /// closes, as the next request cannot be found.
    func malformedRequest(_ problem: HTTPHeadProblem) {
        let status = problem.status
        let reason: String
        switch problem {
        case .tooLarge: reason = "request head over \(HTTPFrontend.maximumHeadSize) bytes"
        case .malformed(let what): reason = "malformed request: \(what.rawValue)"
        case .unsupportedVersion: reason = "unsupported HTTP version"
        }
        frontend.accessLog.log(
            AccessLog.Entry(
                id: "", method: "", clientIP: clientIP, url: "", backend: "", status: status, duration: 0, agent: "",
                error: reason))
        answerAndClose(status: status)
    }

    /// A chunked request body that breaks its framing: the backend cannot
    /// finish the request, and the client's next request cannot be found.
    func malformedBody(_ exchange: HTTPRelayExchange) {
        exchange.responseDeadline = 0
        releaseBackend(of: exchange, reusable: false)
        exchange.error = "malformed request: bad chunked body"
        let started = exchange.responseStarted
        report(exchange, outcome: .clientGone)
        self.exchange = nil
        if started {
            closing = true
        } else {
            answerAndClose(status: 400)
        }
    }

    private func answerAndClose(status: Int) {
        let phrase = HTTPResponseStatus(statusCode: status).reasonPhrase
        let body = "\(phrase)\n"
        let text =
            "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        outbox.append(Array(text.utf8))
        inbox.clear()
        closing = true
    }

    // MARK: Endings

    /// The answer went out whole: the exchange completes if the request did.
    func endResponse(_ exchange: HTTPRelayExchange) {
        exchange.responseEnded = true
        exchange.responseDeadline = 0
        if exchange.requestEnded {
            complete(exchange)
        } else {
            // The answer came before the whole request: its backend cannot be
            // reused; the rest of the body is read and dropped, unless the
            // client holds it back for a 100 Continue that never came.
            releaseBackend(of: exchange, reusable: false)
            report(exchange, outcome: .responded(status: exchange.status))
            if exchange.expectsContinue && !exchange.informationalSent { exchange.keepAlive = false }
        }
        if !exchange.keepAlive {
            closing = true
            inbox.clear()
        }
    }

    /// Both the request and its answer are done.
    func complete(_ exchange: HTTPRelayExchange) {
        guard self.exchange === exchange else { return }
        releaseBackend(of: exchange, reusable: exchange.backendReusable)
        report(exchange, outcome: .responded(status: exchange.status))
        self.exchange = nil
        idleSince = loop.now
    }

    /// Tells the model how a placed request ended and writes the access log
    /// line, once per exchange.
    func report(_ exchange: HTTPRelayExchange, outcome: RequestOutcome) {
        guard !exchange.reported else { return }
        exchange.reported = true
        loop.report(
            .requestServed(exchange.id, sent: exchange.bytesSent, received: exchange.bytesReceived, outcome), to: driver)
        exchange.bytesSent = 0
        exchange.bytesReceived = 0
        if let service = exchange.target?.service {
            let nanoseconds = Int64(cshuttle_now() - exchange.started)
            let metrics = driver.metrics
            state.requestTimers.value(for: service) { metrics.requestTimer(service: service) }
                .recordNanoseconds(nanoseconds)
        }
        log(exchange, status: exchange.status, backend: exchange.target?.address ?? "")
    }

    func log(_ exchange: HTTPRelayExchange, status: Int, backend: String) {
        frontend.accessLog.log(
            AccessLog.Entry(
                id: exchange.requestID, method: exchange.method, clientIP: clientIP, url: exchange.url,
                backend: backend, status: status, duration: Double(cshuttle_now() - exchange.started) / 1e9,
                agent: exchange.agent, error: exchange.error))
    }
}
#endif
