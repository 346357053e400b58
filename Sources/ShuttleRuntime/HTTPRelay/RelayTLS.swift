#if os(Linux)
import CShuttleSplice
import Glibc

/// The system's OpenSSL (libssl.so.3), loaded once at run time, for the
/// relay's HTTPS listener (`CShuttleTLS.h`). Without it, HTTPS stays on
/// SwiftNIO.
enum SystemTLS {
    /// Why the relay cannot serve TLS; nil when it can.
    static let unavailable: String? = {
        var error = [CChar](repeating: 0, count: 256)
        guard cshuttle_tls_load(chooseContext, &error, error.count) == 0 else {
            return text(of: error)
        }
        return nil
    }()

    /// The library's own name and version ("OpenSSL 3.0.19 ...").
    static var version: String { String(cString: cshuttle_tls_version()) }

    /// The text of a NUL-terminated buffer the C side wrote.
    static func text(of buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Called by OpenSSL during a handshake with the client's SNI name: the
/// context of the certificate for it, from the set the session was made
/// with (`arg`, held by the connection while it shakes hands).
private let chooseContext: cshuttle_tls_select = { name, arg in
    guard let arg else { return nil }
    let certificates = Unmanaged<RelayCertificates>.fromOpaque(arg).takeUnretainedValue()
    return certificates.context(for: name.map { String(cString: $0) })?.handle
}

/// One certificate's server context (OpenSSL's SSL_CTX).
final class TLSContext: @unchecked Sendable {  // immutable; OpenSSL's contexts are thread-safe
    let handle: UnsafeMutableRawPointer

    /// Loads a chain and its key from PEM files.
    init(chain: String, key: String) throws {
        if let reason = SystemTLS.unavailable { throw CertificateProblem(reason) }
        var error = [CChar](repeating: 0, count: 256)
        guard let handle = cshuttle_tls_context_new(chain, key, &error, error.count) else {
            throw CertificateProblem(SystemTLS.text(of: error))
        }
        self.handle = handle
    }

    deinit { cshuttle_tls_context_free(handle) }
}

/// The certificates one load of a `CertificateStore` serves to the relay's
/// handshakes; a reload makes a new set, and a session keeps the set it
/// started with.
final class RelayCertificates: @unchecked Sendable {  // immutable
    let entries: [CertificateStore.Entry]

    init(entries: [CertificateStore.Entry]) {
        self.entries = entries
    }

    /// The context for a handshake's SNI name, chosen as the NIO path does.
    func context(for serverName: String?) -> TLSContext? {
        CertificateStore.choose(from: entries, serverName: serverName)?.relay
    }
}

/// One client's TLS session on a relay loop (OpenSSL over its socket).
/// Reads and writes keep read(2)'s and write(2)'s contract, with errno
/// EAGAIN while the session waits for the socket.
final class TLSSession {
    private let handle: UnsafeMutableRawPointer
    /// The set the session chooses its certificate from: kept while it lives.
    private let certificates: RelayCertificates
    private(set) var established = false
    /// The last read waits for the socket to be writable (or the last write
    /// for it to be readable): OpenSSL may need either for either.
    private(set) var readWaitsForWritable = false
    private(set) var writeWaitsForReadable = false
    /// Why the handshake failed, when it did.
    private(set) var failure = ""
    private var error = [CChar](repeating: 0, count: 160)

    /// A session over `fd`, starting with the default certificate.
    init?(fd: Int32, certificates: RelayCertificates) {
        guard let context = certificates.context(for: nil) else { return nil }
        self.certificates = certificates
        let arg = Unmanaged.passUnretained(certificates).toOpaque()
        guard let handle = cshuttle_tls_session_new(context.handle, fd, arg, &error, error.count) else { return nil }
        self.handle = handle
    }

    deinit {
        cshuttle_tls_session_free(handle)
    }

    enum Step {
        case done
        case waitForReadable
        case waitForWritable
        /// The client left or failed the handshake.
        case failed
    }

    /// One step of the handshake.
    func shakeHands() -> Step {
        let result = withExtendedLifetime(certificates) { Int(cshuttle_tls_handshake(handle, &error, error.count)) }
        switch result {
        case 1:
            established = true
            return .done
        case CSHUTTLE_TLS_WANT_READ: return .waitForReadable
        case CSHUTTLE_TLS_WANT_WRITE: return .waitForWritable
        default:
            failure = result == CSHUTTLE_TLS_CLOSED ? "the client closed the connection" : SystemTLS.text(of: error)
            return .failed
        }
    }

    /// Decrypted bytes into `buffer`, as read(2) answers.
    func read(_ buffer: UnsafeMutableRawPointer, _ size: Int) -> Int {
        let n = cshuttle_tls_read(handle, buffer, size)
        readWaitsForWritable = n == CSHUTTLE_TLS_WANT_WRITE
        return result(n)
    }

    /// The socket had no more at the last read, and nothing read waits to
    /// be decrypted.
    var drained: Bool { cshuttle_tls_drained(handle) != 0 }

    /// Encrypts and sends bytes, as write(2) answers.
    func write(_ buffer: UnsafeRawPointer, _ size: Int) -> Int {
        let n = cshuttle_tls_write(handle, buffer, size)
        writeWaitsForReadable = n == CSHUTTLE_TLS_WANT_READ
        return result(n)
    }

    private func result(_ n: Int) -> Int {
        switch n {
        case 0...: return n
        case CSHUTTLE_TLS_WANT_READ, CSHUTTLE_TLS_WANT_WRITE:
            errno = EAGAIN
            return -1
        default:
            errno = ECONNRESET
            return -1
        }
    }

    /// Says goodbye (close_notify) if the socket takes it at once.
    func shutdown() {
        if established { cshuttle_tls_shutdown(handle) }
    }
}
#endif
