import Logging
import NIOCore
import NIOHTTP1
import ShuttleModel

/// One admin API connection, after NIOHTTP1's decoder: collects a request
/// (its body up to `maxBodySize`), has it answered, writes the answer, and
/// keeps the connection for the next request.
///
/// NIOHTTP1's pipelining handler holds back a pipelined request until the
/// answer to the previous one is written, so there is one request at a time.
/// Confined to its channel's event loop.
final class AdminConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Largest request body accepted (the whole config of a big installation
    /// is a few hundred KiB).
    static let maxBodySize = 8 * 1024 * 1024
    /// How long input is drained after a 413 before the connection is closed.
    static let lingerTime = TimeAmount.seconds(2)

    private enum State {
        /// Waiting for a request head.
        case idle
        /// Head read, body arriving.
        case receiving(Request)
        /// The request is complete; its answer is being computed.
        case answering
        /// The connection closes after the current answer; input is dropped.
        case closing
    }

    private struct Request {
        var head: HTTPRequestHead
        var route: AdminRoute
        /// Kept only when the route wants it.
        var body: ByteBuffer?
        var received = 0
    }

    private let driver: Driver
    private let access: AdminAccess
    private var state = State.idle
    private var lingerTimer: Scheduled<Void>?

    init(driver: Driver, access: AdminAccess) {
        self.driver = driver
        self.access = access
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            receive(head, context: context)
        case .body(var part):
            receive(&part, context: context)
        case .end:
            receiveEnd(context: context)
        }
    }

    private func receive(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch state {
        case .idle:
            break
        case .closing:
            return
        case .receiving, .answering:
            // The pipelining handler makes this impossible; do not guess.
            driver.logger.error("admin connection: request head out of order")
            context.close(promise: nil)
            return
        }
        var request = Request(head: head, route: AdminRoutes.route(method: head.method, target: head.uri))
        if case .call(let method, let endpoint) = request.route,
            !access.allows(method: method, endpoint: endpoint, authorization: head.headers["authorization"].first)
        {
            var refusal = AdminResponse.error(.unauthorized, "this call needs Authorization: Bearer with the admin token")
            refusal.headers.append(("WWW-Authenticate", "Bearer realm=\"shuttle\""))
            request.route = .refuse(refusal)
        }
        let declared = head.headers.first(name: "content-length").flatMap { Int($0) }
        if let declared, declared > Self.maxBodySize {
            refuseOversizedBody(head, context: context)
            return
        }
        if request.route.needsBody {
            request.body = context.channel.allocator.buffer(capacity: min(declared ?? 0, 64 * 1024))
        }
        state = .receiving(request)
        // curl asks before sending a body over 1 MiB and waits a second otherwise.
        if head.version.major == 1, head.version.minor >= 1,
            head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
        {
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
    }

    private func receive(_ part: inout ByteBuffer, context: ChannelHandlerContext) {
        guard case .receiving(var request) = state else { return }
        state = .answering  // Lets `request` be mutated in place, without a copy of the body.
        request.received += part.readableBytes
        if request.received > Self.maxBodySize {
            refuseOversizedBody(request.head, context: context)
            return
        }
        request.body?.writeBuffer(&part)
        state = .receiving(request)
    }

    private func receiveEnd(context: ChannelHandlerContext) {
        guard case .receiving(let request) = state else { return }
        state = .answering
        let answer: EventLoopFuture<AdminResponse>
        switch request.route {
        case .refuse(let response):
            answer = context.eventLoop.makeSucceededFuture(response)
        case .call(let method, let endpoint):
            answer = AdminRoutes.respond(to: method, endpoint, body: request.body, driver: driver)
        }
        let head = request.head
        answer.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            // The client may have gone while the model was busy.
            guard case .answering = self.state else { return }
            let response: AdminResponse
            switch result {
            case .success(let r): response = r
            case .failure(let error):
                response = .error(.internalServerError, "the request could not be answered: \(error)")
            }
            self.log(head, response)
            self.write(response, to: head, ending: head.isKeepAlive ? .keepAlive : .close, context: context)
        }
    }

    /// What becomes of the connection once an answer is written.
    private enum Ending {
        /// Ready for the next request.
        case keepAlive
        /// Closed (the client asked for it).
        case close
        /// Our output closed, the client's input drained for `lingerTime`,
        /// then closed: the client may still be sending a body we refused,
        /// and closing at once would reset the connection, which can destroy
        /// the answer before the client reads it.
        case linger
    }

    /// Writes an answer and ends it as `ending` says.
    private func write(
        _ response: AdminResponse, to head: HTTPRequestHead, ending: Ending, context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        switch ending {
        case .close, .linger:
            headers.add(name: "Connection", value: "close")
        case .keepAlive where head.version.major == 1 && head.version.minor == 0:
            headers.add(name: "Connection", value: "keep-alive")
        case .keepAlive:
            break
        }
        let version = head.version.major == 1 ? head.version : .http1_1
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))),
            promise: nil)
        if head.method != .HEAD && !response.body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: response.body.count)
            buffer.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        // Set before the end is written: writing it lets the pipelining
        // handler deliver the next request at once.
        state = ending == .keepAlive ? .idle : .closing
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        switch ending {
        case .keepAlive:
            break
        case .close:
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .linger:
            written.assumeIsolated().whenComplete { _ in
                // A socket that cannot half-close is closed whole.
                context.close(mode: .output).assumeIsolated().whenFailure { _ in context.close(promise: nil) }
            }
            lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.lingerTime) {
                context.close(promise: nil)
            }
        }
    }

    /// 413 as soon as the body is known to be too large, without reading it.
    private func refuseOversizedBody(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let response = AdminResponse.error(
            .payloadTooLarge, "request body is larger than \(Self.maxBodySize) bytes (8 MiB)")
        log(head, response)
        write(response, to: head, ending: .linger, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // A client that holds a connection without a word.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        lingerTimer?.cancel()
        lingerTimer = nil
        state = .closing
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A parse error was already answered with 400 by NIOHTTP1's error
        // handler; any error ends this connection, never the server.
        driver.logger.debug("admin connection error", metadata: ["error": "\(error)"])
        state = .closing
        context.close(promise: nil)
    }

    private func log(_ head: HTTPRequestHead, _ response: AdminResponse) {
        let metadata: Logger.Metadata = [
            "method": "\(head.method.rawValue)", "path": "\(head.uri)", "status": "\(response.status.code)",
        ]
        switch head.method {
        case .GET, .HEAD:
            driver.logger.debug("admin request", metadata: metadata)
        default:
            driver.logger.info("admin request", metadata: metadata)
        }
    }
}
