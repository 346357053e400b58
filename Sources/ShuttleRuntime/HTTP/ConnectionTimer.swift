import NIOCore

/// One of a client connection's two timers (idle, response), as a NIO
/// scheduled callback whose handler is this object. Arming it again
/// allocates nothing, where a scheduled task allocates its closure, a
/// promise and the promise's future: with both timers armed once per
/// connection, six of a `Connection: close` request's mallocs.
final class ConnectionTimer: NIOScheduledCallbackHandler, @unchecked Sendable {  // used on its event loop only
    enum Kind {
        case idle
        case response
    }

    let kind: Kind
    private let loop: any EventLoop
    private var scheduled: NIOScheduledCallback?
    /// When it fires; nil while not armed.
    private(set) var due: NIODeadline?
    /// Whom it tells. The handler holds the timer and the timer the
    /// handler until `stop` (the handler's removal) breaks the cycle.
    private var owner: HTTPProxyHandler?

    init(_ kind: Kind, owner: HTTPProxyHandler, loop: any EventLoop) {
        self.kind = kind
        self.owner = owner
        self.loop = loop
    }

    /// Fires at `deadline` instead of when it was armed to.
    func schedule(at deadline: NIODeadline) {
        scheduled?.cancel()
        due = deadline
        // Fails only on a loop shutting down, whose connections are closing.
        scheduled = try? loop.scheduleCallback(at: deadline, handler: self)
    }

    func cancel() {
        scheduled?.cancel()
        scheduled = nil
        due = nil
    }

    /// Cancels, and lets go of the handler.
    func stop() {
        cancel()
        owner = nil
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        scheduled = nil
        due = nil
        guard let owner else { return }
        switch kind {
        case .idle: owner.idleTimerFired()
        case .response: owner.responseTimerFired()
        }
    }
}
