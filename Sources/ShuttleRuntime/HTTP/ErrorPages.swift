import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ShuttleModel

/// The services' error pages: each URL fetched ahead of time and cached with
/// the headers that matter (COMPAT.md), never fetched while a client waits.
/// A page that could not be fetched is tried again every `retryInterval`,
/// and as soon as a request would have used it (in the background: that
/// request gets the plain answer).
final class ErrorPages: Sendable {
    struct Page: Sendable {
        var headers: [(String, String)]
        var body: ByteBuffer
    }

    struct State {
        /// Service to status code to URL, from the running config.
        var codes: [String: [Int: String]] = [:]
        var errorPages: [String: [String: [Int]]] = [:]
        var pages: [String: Page] = [:]
        var missing: Set<String> = []
        /// Fetches under way, and when each missing page was last tried.
        var inFlight: Set<String> = []
        var lastTried: [String: NIODeadline] = [:]
        var retry: RepeatedTask?
        var stopped = false
    }

    /// Headers of a fetched page that are served with it.
    static let keptHeaders = ["content-type", "content-encoding", "cache-control", "last-modified", "retry-after", "set-cookie"]
    static let retryInterval = TimeAmount.seconds(10)
    /// A page a request missed is tried again at most this often.
    static let retryOnUseInterval = TimeAmount.seconds(1)
    static let maximumSize = 1 << 20

    let driver: Driver
    let state = NIOLockedValueBox(State())

    init(driver: Driver) {
        self.driver = driver
    }

    /// The page for a status of a service, if it has one and it is cached.
    /// A page not fetched yet is fetched now, in the background.
    func page(service: String, status: Int) -> Page? {
        let now = NIODeadline.now()
        let (page, refetch) = state.withLockedValue { s -> (Page?, String?) in
            guard let url = s.codes[service]?[status] else { return (nil, nil) }
            if let page = s.pages[url] { return (page, nil) }
            guard !s.stopped, !s.inFlight.contains(url),
                s.lastTried[url].map({ now - $0 >= Self.retryOnUseInterval }) ?? true
            else { return (nil, nil) }
            return (nil, url)
        }
        if let refetch { fetch(refetch) }
        return page
    }

    /// Follows a new running config: fetches the pages of services whose
    /// `error_pages` changed, forgets the ones no longer used.
    func update(_ config: Config) {
        let toFetch = state.withLockedValue { s -> [String] in
            var fetch: Set<String> = []
            var codes: [String: [Int: String]] = [:]
            var all: [String: [String: [Int]]] = [:]
            for service in config.services where !service.errorPages.isEmpty {
                all[service.name] = service.errorPages
                for (url, statuses) in service.errorPages {
                    for status in statuses { codes[service.name, default: [:]][status] = url }
                }
                if s.errorPages[service.name] != service.errorPages { fetch.formUnion(service.errorPages.keys) }
            }
            let used = Set(all.values.flatMap(\.keys))
            s.pages = s.pages.filter { used.contains($0.key) }
            s.missing = s.missing.intersection(used)
            s.lastTried = s.lastTried.filter { used.contains($0.key) }
            s.codes = codes
            s.errorPages = all
            if s.retry == nil && !used.isEmpty {
                s.retry = driver.control.scheduleRepeatedTask(initialDelay: Self.retryInterval, delay: Self.retryInterval) {
                    [weak self] _ in self?.retryMissing()
                }
            }
            return fetch.sorted()
        }
        for url in toFetch { fetch(url) }
    }

    func retryMissing() {
        let urls = state.withLockedValue { Array($0.missing).sorted() }
        for url in urls { fetch(url) }
    }

    func fetch(_ url: String) {
        let now = NIODeadline.now()
        let start = state.withLockedValue { s -> Bool in
            guard !s.stopped, !s.inFlight.contains(url) else { return false }
            s.inFlight.insert(url)
            s.lastTried[url] = now
            return true
        }
        guard start else { return }
        SimpleHTTPClient.get(url, on: driver.control, maximumSize: Self.maximumSize).whenComplete { result in
            self.state.withLockedValue { _ = $0.inFlight.remove(url) }
            switch result {
            case .success(let (head, body)) where (200..<300).contains(head.status.code):
                let headers = head.headers.filter { Self.keptHeaders.contains($0.name.lowercased()) }.map { ($0.name, $0.value) }
                self.state.withLockedValue { s in
                    // Unless the config stopped using it meanwhile.
                    guard s.errorPages.values.contains(where: { $0[url] != nil }) else { return }
                    s.pages[url] = Page(headers: headers, body: body)
                    s.missing.remove(url)
                }
                self.driver.logger.info("error page fetched", metadata: ["url": "\(url)", "bytes": "\(body.readableBytes)"])
            case .success(let (head, _)):
                self.state.withLockedValue { _ = $0.missing.insert(url) }
                self.driver.logger.warning("error page not fetched", metadata: ["url": "\(url)", "status": "\(head.status.code)"])
            case .failure(let error):
                self.state.withLockedValue { _ = $0.missing.insert(url) }
                self.driver.logger.warning("error page not fetched", metadata: ["url": "\(url)", "error": "\(error)"])
            }
        }
    }

    func stop() {
        state.withLockedValue { s -> RepeatedTask? in
            s.stopped = true
            return s.retry
        }?.cancel()
    }
}

/// A minimal HTTP/1.1 GET for fetching error pages, over TLS for https URLs.
enum SimpleHTTPClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func get(_ url: String, on loop: any EventLoop, maximumSize: Int, timeout: TimeAmount = .seconds(5))
        -> EventLoopFuture<(HTTPResponseHead, ByteBuffer)>
    {
        guard let parsed = ParsedURL(url) else { return loop.makeFailedFuture(Failure(description: "bad URL \(url)")) }
        var tls: NIOSSLContext?
        if parsed.isTLS {
            do {
                tls = try TLSClient.makeContext()
            } catch {
                return loop.makeFailedFuture(error)
            }
        }
        let promise = loop.makePromise(of: (HTTPResponseHead, ByteBuffer).self)
        let collector = ResponseCollector(promise: promise, maximumSize: maximumSize)
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { [tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let handler = try NIOSSLClientHandler(context: tls, serverHostname: TLSClient.serverName(for: parsed))
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: parsed.host, port: parsed.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    collector.send(parsed, on: channel)
                    let timer = loop.scheduleTask(in: timeout) {
                        collector.fail(Failure(description: "timed out"))
                        channel.close(promise: nil)
                    }
                    promise.futureResult.whenComplete { _ in timer.cancel() }
                case .failure(let error):
                    promise.fail(error)
                }
            }
        return promise.futureResult
    }
}

struct ParsedURL {
    var isTLS: Bool
    var host: String
    var port: Int
    var path: String

    init?(_ url: String) {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            isTLS = false
            rest = url.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            isTLS = true
            rest = url.dropFirst(8)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        var pathPart = String(rest.dropFirst(authority.count).prefix { $0 != "#" })
        if pathPart.isEmpty || pathPart.hasPrefix("?") { pathPart = "/" + pathPart }
        path = pathPart
        guard case .success(let hostPort) = HostPort.parse(authority.contains(":") && !authority.hasSuffix("]") ? String(authority) : "\(authority):\(isTLS ? 443 : 80)", listening: false) else {
            return nil
        }
        host = hostPort.hostString
        port = hostPort.port
    }
}

/// Collects one response; completes the promise at its end.
final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let promise: EventLoopPromise<(HTTPResponseHead, ByteBuffer)>
    let maximumSize: Int
    var head: HTTPResponseHead?
    var body = ByteBuffer()
    var done = false

    init(promise: EventLoopPromise<(HTTPResponseHead, ByteBuffer)>, maximumSize: Int) {
        self.promise = promise
        self.maximumSize = maximumSize
    }

    func send(_ url: ParsedURL, on channel: any Channel) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.port == (url.isTLS ? 443 : 80) ? url.host : "\(url.host):\(url.port)")
        headers.add(name: "User-Agent", value: "shuttle")
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body(var b):
            guard body.readableBytes + b.readableBytes <= maximumSize else {
                fail(SimpleHTTPClient.Failure(description: "page larger than \(maximumSize) bytes"))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&b)
        case .end:
            if let head, !done {
                done = true
                promise.succeed((head, body))
            }
            context.close(promise: nil)
        }
    }

    func fail(_ error: any Error) {
        guard !done else { return }
        done = true
        promise.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SimpleHTTPClient.Failure(description: "connection closed before the end of the page"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }
}
