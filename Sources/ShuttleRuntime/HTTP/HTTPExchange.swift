import NIOCore
import NIOHTTP1
import ShuttleModel

/// One request of a client connection and its answer, from the request's
/// head to the end of both. Confined to the client's event loop.
final class HTTPExchange: @unchecked Sendable {  // confined to its client's event loop
    let id: ConnectionID
    let head: HTTPRequestHead
    let requestID: String
    let started = NIODeadline.now()
    /// The client connection carries more requests after this one.
    var keepAlive: Bool
    /// `Connection: upgrade` (WebSocket): after a 101 the connection becomes
    /// a byte stream; after any other answer it cannot carry another
    /// request (the decoder stops at an upgrade request), so it is closed.
    let asksUpgrade: Bool
    /// The client waits for `100 Continue` before it sends the body.
    let expectsContinue: Bool

    // MARK: The request

    /// The client's `.end` arrived.
    var requestEnded = false
    /// Parts read while no backend connection is attached yet.
    var waiting: [HTTPClientRequestPart] = []
    /// Everything sent to the backend, kept for one retry on a fresh
    /// connection while the method allows it and the body is small; nil
    /// once a retry is impossible.
    var replay: [HTTPClientRequestPart]?
    var replayBytes = 0
    /// Body bytes of a request that was answered before it ended, read and
    /// dropped so that the connection can carry the next request.
    var discardedBytes = 0

    // MARK: The backend

    var target: BackendTarget?
    var backend: BackendConnection?
    /// The backend connection came from the pool.
    var reused = false
    /// The one retry on a fresh connection was made.
    var retried = false
    /// When the backend must have started its answer (`server_timeout`);
    /// nil while none is awaited. The connection's one response timer
    /// looks at it (`HTTPProxyHandler.responseTimerFired`).
    var responseDeadline: NIODeadline?

    // MARK: The answer

    /// A 1xx answer went to the client: something came back, no retry.
    var informationalSent = false
    /// The final head as the backend sent it.
    var responseHead: HTTPResponseHead?
    /// The final head went to the client.
    var responseStarted = false
    var responseEnded = false
    /// The proxy answered itself: the backend's answer, if any, is not
    /// forwarded, and the request's body is dropped.
    var answeredLocally = false
    /// The backend's body is being replaced by this error page.
    var replacingPage: ErrorPages.Page?
    /// The status the client got, for the log.
    var status = 0

    // MARK: Accounting

    /// Body bytes to the backend and from it, not yet reported.
    var bytesSent = 0
    var bytesReceived = 0
    /// Why it failed, for the access log's `err=`.
    var error = ""
    /// Reported to the model (if placed) and written to the access log.
    var reported = false

    init(id: ConnectionID, head: HTTPRequestHead, requestID: String) {
        self.id = id
        self.head = head
        self.requestID = requestID
        asksUpgrade = HeaderRules.isUpgrade(head) || head.method == .CONNECT
        keepAlive = head.isKeepAlive
        expectsContinue = head.headers["expect"].contains { $0.lowercased() == "100-continue" }
        replay = HeaderRules.isIdempotent(head.method) ? [] : nil
    }

    /// The backend can still take what the client sends.
    var isForwarding: Bool { !answeredLocally && !responseEnded }
}
