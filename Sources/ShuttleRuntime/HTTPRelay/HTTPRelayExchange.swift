#if os(Linux)
import NIOHTTP1
import ShuttleHTTPWire
import ShuttleModel

/// One request of a relay client connection and its answer, from the
/// request's head to the end of both (the relay's `HTTPExchange`).
final class HTTPRelayExchange: @unchecked Sendable {  // confined to its connection's loop
    let id: ConnectionID
    let requestID: String
    /// The loop's clock when the head was read.
    let started: UInt64
    let method: String
    let url: String
    let agent: String
    let isHEAD: Bool
    /// The client's HTTP/1.x minor version.
    let minorVersion: Int
    /// The client connection carries more requests after this one.
    var keepAlive: Bool
    /// `Connection: upgrade` with an `Upgrade`: a 101 turns the connection
    /// into a tunnel; any other answer ends it.
    let asksUpgrade: Bool
    /// The client waits for `100 Continue` before it sends the body.
    let expectsContinue: Bool

    // MARK: The request

    /// The head as the backend gets it.
    let head: [UInt8]
    let framing: HTTPBodyFraming
    /// Body bytes of a `Content-Length` body still to come.
    var remaining: UInt64 = 0
    var chunks = ChunkedBodyScanner()
    var requestEnded: Bool
    /// Everything sent to the backend, kept for one retry on a fresh
    /// connection while the method allows it and it is small; nil once a
    /// retry is impossible.
    var replay: [UInt8]?
    /// Body bytes dropped after the request was answered without them.
    var discarded = 0

    // MARK: The backend

    var target: BackendTarget?
    /// The backend connection: connecting, then `attached` once the head is
    /// on its way (the body follows it, never before).
    var backend: HTTPRelayBackend?
    var attached = false
    var reused = false
    var retried = false
    /// When the backend must have started its answer (loop clock); 0 while
    /// none is awaited.
    var responseDeadline: UInt64 = 0

    // MARK: The answer

    var informationalSent = false
    var responseStarted = false
    var responseEnded = false
    var body = HTTPHeadWriter.ResponseBody.none
    var responseRemaining: UInt64 = 0
    var responseChunks = ChunkedBodyScanner()
    /// The backend connection can carry another request after this answer.
    var backendReusable = true
    var answeredLocally = false
    var status = 0

    // MARK: Accounting

    var bytesSent = 0
    var bytesReceived = 0
    var error = ""
    var reported = false

    init(
        id: ConnectionID, requestID: String, started: UInt64, method: String, url: String, agent: String,
        scanned: HTTPHead, backendHead: [UInt8]
    ) {
        self.id = id
        self.requestID = requestID
        self.started = started
        self.method = method
        self.url = url
        self.agent = agent
        isHEAD = method == "HEAD"
        minorVersion = scanned.minorVersion
        keepAlive = scanned.keepsAlive
        asksUpgrade = (scanned.hasUpgrade && scanned.connection.contains(.upgrade)) || method == "CONNECT"
        expectsContinue = scanned.expectsContinue
        head = backendHead
        framing = scanned.framing
        switch scanned.framing {
        case .length(let count): remaining = count
        default: break
        }
        requestEnded = scanned.framing == .none
        replay = HeaderRules.isIdempotent(method: method) ? [] : nil
    }

    /// The backend can still take what the client sends.
    var isForwarding: Bool { !answeredLocally && !responseEnded }
}
#endif
