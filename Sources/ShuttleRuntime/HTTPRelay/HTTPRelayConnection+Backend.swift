#if os(Linux)
import CShuttleSplice
import Glibc
import ShuttleHTTPWire
import ShuttleModel

/// Placing an exchange on a backend connection, and the backend's answer.
extension HTTPRelayConnection {
    // MARK: Placing

    /// Takes a pooled connection to `target`, or connects a new one
    /// (`fresh`: for the retry, never a pooled one).
    func acquire(_ target: BackendTarget, for exchange: HTTPRelayExchange, fresh: Bool = false) {
        exchange.target = target
        if target.clientTimeout > 0 { idleTimeout = UInt64(target.clientTimeout) * 1_000_000 }
        if !fresh, let pooled = state.pool.take(target.id) {
            exchange.reused = true
            pooled.owner = self
            attach(pooled, to: exchange)
            return
        }
        let location = loop.locate(target) { [self] result in
            // A later attempt, or the client's end, came first.
            guard let current = self.exchange, current === exchange, exchange.backend == nil, exchange.isForwarding,
                exchange.target == target
            else { return }
            switch result {
            case .success(let address): connect(to: address, target: target, for: exchange)
            case .failure(let error): connectFailed(error.description, for: exchange)
            }
            pump()
        }
        switch location {
        case .known(let address): connect(to: address, target: target, for: exchange)
        case .resolving: break
        case .unusable(let reason): connectFailed(reason, for: exchange)
        }
    }

    private func connect(to address: SpliceAddress, target: BackendTarget, for exchange: HTTPRelayExchange) {
        switch HTTPRelayBackend.connect(to: address, target: target, owner: self, loop: loop, pool: state.blocks) {
        case .success(let backend):
            exchange.reused = false
            exchange.backend = backend
            if !backend.connecting { backendConnected(backend) }
        case .failure(let failure):
            connectFailed(failure.description, for: exchange)
        }
    }

    /// The backend's connect completed.
    func backendConnected(_ backend: HTTPRelayBackend) {
        guard let exchange, exchange.backend === backend else {
            backend.close()
            return
        }
        loop.recordConnect(
            backend.target, nanoseconds: Int64(cshuttle_now() - backend.connectStarted), metrics: driver.metrics)
        attach(backend, to: exchange)
        pump()
    }

    func backendConnectFailed(_ backend: HTTPRelayBackend, reason: String) {
        backend.close()
        guard let exchange, exchange.backend === backend else { return }
        exchange.backend = nil
        connectFailed(reason, for: exchange)
        pump()
    }

    private func connectFailed(_ reason: String, for exchange: HTTPRelayExchange) {
        exchange.error = reason
        if let target = exchange.target { driver.logConnectFailure(to: target, reason: reason) }
        if exchange.retried {
            failExchange(exchange, status: 502, reason: "retry on a new connection failed: \(reason)")
        } else {
            carryOut(driver.send(.backendConnectFailed(exchange.id, reason: reason)), for: exchange)
        }
    }

    /// Sends the request on `backend`: its head (or, for the retry, all
    /// that was sent before); its body follows from `inbox`.
    private func attach(_ backend: HTTPRelayBackend, to exchange: HTTPRelayExchange) {
        if !exchange.retried { loop.report(.backendConnected(exchange.id), to: driver) }
        exchange.backend = backend
        exchange.attached = true
        // A head another backend left half-sent (a 504 before it ended) is forgotten.
        responses.reset()
        if exchange.retried, let replay = exchange.replay {
            backend.outbox.append(replay)
        } else {
            backend.outbox.append(exchange.head)
            // Kept for a retry without a copy: the body, if any, is added to it.
            if exchange.replay != nil { exchange.replay = exchange.head }
        }
        if exchange.requestEnded || exchange.expectsContinue { startResponseTimer(exchange) }
    }

    /// `server_timeout`: the time the backend has to start its answer once
    /// the request is sent (or, with `Expect: 100-continue`, to say go on).
    func startResponseTimer(_ exchange: HTTPRelayExchange) {
        guard let target = exchange.target, target.serverTimeout > 0, !exchange.responseStarted,
            exchange.responseDeadline == 0, exchange.backend != nil
        else { return }
        exchange.responseDeadline = loop.now + UInt64(target.serverTimeout) * 1_000_000
    }

    /// Takes the backend connection off the exchange: back to the pool if
    /// it finished a whole request and answer, else closed.
    func releaseBackend(of exchange: HTTPRelayExchange, reusable: Bool) {
        guard let backend = exchange.backend else { return }
        exchange.backend = nil
        exchange.attached = false
        if reusable && !backend.ended && backend.inbox.isEmpty && backend.outbox.isEmpty {
            state.pool.put(backend, now: loop.now)
        } else {
            backend.close()
        }
    }

    // MARK: Bytes to and from the backend

    func flushBackend(_ backend: HTTPRelayBackend) -> Bool {
        guard backend.writable, !backend.outbox.isEmpty else { return false }
        let n = backend.outbox.write(to: backend.fd)
        if n > 0 { return true }
        if n < 0 && errno == EAGAIN {
            backend.writable = false
            return false
        }
        // Reset: its reading side says the rest.
        backend.outbox.clear()
        backend.ended = true
        backend.readable = true
        return true
    }

    func readBackend(_ backend: HTTPRelayBackend) -> Bool {
        guard backend.readable, !backend.ended, outbox.count < Self.outboxLimit else { return false }
        let n = backend.inbox.read(from: backend.fd, limit: Self.inboxLimit)
        if n > 0 {
            if backend.inbox.drained && !backend.hangup { backend.readable = false }
            return true
        }
        if n < 0 && errno == EAGAIN {
            backend.readable = false
            return false
        }
        if n < 0 && errno == EINTR { return true }
        backend.ended = true
        if n < 0 { backend.error = describeErrno("read", errno) }
        return true
    }

    /// Reads the answer's head, and forwards its body: both in one pass,
    /// so that a small answer goes to the client in one write.
    func handleBackendBytes() -> Bool {
        var moved = false
        while bodyPipe == nil, let exchange, let backend = exchange.backend, exchange.attached, exchange.isForwarding {
            let step = exchange.responseStarted ? forwardResponseBody(exchange, backend) : readResponseHead(exchange, backend)
            guard step else { break }
            moved = true
            if exchange.responseEnded || backend.inbox.isEmpty && !backend.ended { break }
        }
        return moved
    }

    private func readResponseHead(_ exchange: HTTPRelayExchange, _ backend: HTTPRelayBackend) -> Bool {
        guard !backend.inbox.isEmpty else {
            if backend.ended { backendGone(exchange, backend, garbled: false) }
            return backend.ended
        }
        let bytes = backend.inbox.bytes
        switch responses.scanResponse(bytes, toHEAD: exchange.isHEAD) {
        case .incomplete:
            if backend.ended { backendGone(exchange, backend, garbled: true) }
            return backend.ended
        case .invalid(let problem):
            backendGone(exchange, backend, garbled: true, problem: "\(problem)")
            return true
        case .head(let head) where head.status < 200 && head.status != 101:
            // 100 Continue and other interim answers go straight through.
            exchange.informationalSent = true
            if !exchange.requestEnded { exchange.responseDeadline = 0 }
            state.scratch.removeAll(keepingCapacity: true)
            _ = HTTPHeadWriter.clientResponse(
                head, fields: responses.fields, of: bytes, clientMinorVersion: exchange.minorVersion,
                toHEAD: exchange.isHEAD, keepAlive: true, asksUpgrade: false, requestID: exchange.requestID,
                backend: backend.target.address, into: &state.scratch)
            outbox.append(state.scratch)
            backend.inbox.consume(head.length)
            return true
        case .head(let head):
            exchange.responseDeadline = 0
            exchange.status = head.status
            if head.status != 101, let page = frontend.errorPages.page(service: backend.target.service, status: head.status) {
                // The service's page replaces the answer; the backend's body is
                // not read. (The reason is copied before its bytes are let go.)
                exchange.backendReusable = false
                writePage(page, status: head.status, reason: bytes[head.reason], exchange: exchange, backend: backend.target.address)
                backend.inbox.consume(head.length)
                endResponse(exchange)
                return true
            }
            state.scratch.removeAll(keepingCapacity: true)
            let (body, keepAlive) = HTTPHeadWriter.clientResponse(
                head, fields: responses.fields, of: bytes, clientMinorVersion: exchange.minorVersion,
                toHEAD: exchange.isHEAD, keepAlive: exchange.keepAlive, asksUpgrade: exchange.asksUpgrade,
                requestID: exchange.requestID, backend: backend.target.address, into: &state.scratch)
            outbox.append(state.scratch)
            backend.inbox.consume(head.length)
            exchange.responseStarted = true
            exchange.keepAlive = keepAlive
            exchange.body = body
            exchange.backendReusable = head.keepsAlive && head.framing != .untilClose
            if case .length(let count) = body { exchange.responseRemaining = count }
            if head.status == 101 && exchange.asksUpgrade {
                startTunnel(exchange, backend)
                return true
            }
            if body == .none { endResponse(exchange) }
            return true
        }
    }

    private func forwardResponseBody(_ exchange: HTTPRelayExchange, _ backend: HTTPRelayBackend) -> Bool {
        let available = backend.inbox.bytes
        var ended = false
        var moved = 0
        // Bytes passed on as they came: moved to the client's queue, not copied.
        var passed = 0
        switch exchange.body {
        case .none:
            ended = true
        case .length:
            let take = Int(min(exchange.responseRemaining, UInt64(available.count)))
            exchange.responseRemaining -= UInt64(take)
            moved = take
            passed = take
            ended = exchange.responseRemaining == 0
            // What is left of a large body goes through a pipe (all that was read goes out first).
            if !ended { startSplicing(exchange, backend) }
        case .chunked, .dechunked:
            // Passed on as it came, or (to an HTTP/1.0 client) its data alone.
            let dechunk = exchange.body == .dechunked
            let progress = exchange.responseChunks.advance(over: available) { range in
                if dechunk { outbox.append(UnsafeRawBufferPointer(rebasing: available[range])) }
            }
            switch progress {
            case .more: moved = available.count
            case .ended(let count):
                moved = count
                ended = true
            case .invalid:
                backendBrokeOff(exchange, reason: "malformed chunked answer")
                return true
            }
            if !dechunk { passed = moved }
        case .chunkEncoded:
            moved = available.count
            if moved > 0 {
                outbox.append(Array(String(moved, radix: 16).utf8))
                outbox.append("\r\n")
                outbox.append(available)
                outbox.append("\r\n")
            }
            if backend.ended {
                outbox.append("0\r\n\r\n")
                ended = true
            }
        case .untilClose:
            moved = available.count
            passed = moved
            ended = backend.ended
        }
        exchange.bytesReceived += moved
        if passed > 0 {
            backend.inbox.move(passed, to: outbox)
        } else {
            backend.inbox.consume(moved)
        }
        if ended {
            endResponse(exchange)
            return true
        }
        if backend.ended && backend.inbox.isEmpty {
            backendBrokeOff(exchange, reason: backend.error ?? "the backend closed the connection")
            return true
        }
        return moved > 0
    }

    /// Nothing came back: a reused connection may have been closed by the
    /// backend as it went idle; the request goes once more on a fresh one
    /// if it may be sent twice and all of it was kept. Else 502.
    private func backendGone(
        _ exchange: HTTPRelayExchange, _ backend: HTTPRelayBackend, garbled: Bool, problem: String? = nil
    ) {
        let reason = problem.map { "malformed answer: \($0)" } ?? backend.error ?? "the backend closed the connection"
        if !exchange.informationalSent, exchange.reused, !exchange.retried, !garbled, exchange.replay != nil,
            let target = exchange.target
        {
            driver.logger.debug(
                "retrying on a new connection",
                metadata: ["request_id": "\(exchange.requestID)", "backend": "\(target.name)", "reason": "\(reason)"])
            exchange.retried = true
            exchange.responseDeadline = 0
            releaseBackend(of: exchange, reusable: false)
            acquire(target, for: exchange, fresh: true)
            return
        }
        failExchange(exchange, status: 502, reason: reason)
    }

    /// Part of the answer went out: only a close can tell the client,
    /// after what arrived before is written.
    func backendBrokeOff(_ exchange: HTTPRelayExchange, reason: String) {
        exchange.error = reason
        releaseBackend(of: exchange, reusable: false)
        report(exchange, outcome: .failed(status: exchange.status, reason: reason))
        self.exchange = nil
        closing = true
    }

    // MARK: Upgrades

    /// A 101 to an upgrade request: from now on bytes go both ways as they are.
    private func startTunnel(_ exchange: HTTPRelayExchange, _ backend: HTTPRelayBackend) {
        exchange.responseEnded = true
        exchange.requestEnded = true
        exchange.backend = nil
        report(exchange, outcome: .responded(status: 101))
        self.exchange = nil
        tunnel = backend
        // What either side sent after the heads goes on.
        backend.inbox.move(backend.inbox.count, to: outbox)
        inbox.move(inbox.count, to: backend.outbox)
    }

    /// Moves bytes both ways; the first end (or error) closes both.
    func relayTunnel(_ backend: HTTPRelayBackend) -> Bool {
        var moved = false
        if backend.writable, !backend.outbox.isEmpty {
            let n = backend.outbox.write(to: backend.fd)
            if n > 0 {
                moved = true
            } else if n < 0 && errno == EAGAIN {
                backend.writable = false
            } else {
                closing = true
                return true
            }
        }
        if readable && !clientEnded && backend.outbox.count < Self.outboxLimit {
            let n = receive(into: backend.outbox, limit: Self.outboxLimit)
            if n > 0 {
                moved = true
            } else if n < 0 && errno == EAGAIN {
                readable = false
            } else {
                clientEnded = true
                moved = true
            }
        }
        if backend.readable && !backend.ended && outbox.count < Self.outboxLimit {
            let n = outbox.read(from: backend.fd, limit: Self.outboxLimit)
            if n > 0 {
                moved = true
            } else if n < 0 && errno == EAGAIN {
                backend.readable = false
            } else {
                backend.ended = true
                moved = true
            }
        }
        // Either end closes both once what is on its way is written.
        if (clientEnded && backend.outbox.isEmpty) || backend.ended {
            closing = true
        }
        return moved
    }
}
#endif
