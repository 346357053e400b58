import FoundationEssentials
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// The certificates of the HTTPS listener: every `NAME.pem` + `NAME.key`
/// pair of a directory (a pem may hold a chain). A connection gets the
/// certificate whose names (subject alternative names, else the common
/// name) match its SNI name, an exact name beating a wildcard; else the one
/// whose file is named after the SNI name, as the original did; else the
/// default (`default.pem`, else the first by name). Reloading swaps the set
/// for new handshakes; open connections keep theirs.
public final class CertificateStore: Sendable {
    struct Entry: Sendable {
        var file: String
        var names: [String]
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        #if os(Linux)
        /// The same pair for the relay's handshakes (OpenSSL), when it serves HTTPS.
        var relay: TLSContext?
        #endif
    }

    /// The outcome of a (re)load.
    public struct Report: Sendable, Equatable {
        /// File names (without extension) now served.
        public var served: [String]
        /// The names each served file answers for (its certificate's names).
        public var names: [String: [String]]
        /// Pairs that failed to load, with the reason.
        public var failed: [String: String]
    }

    public enum LoadError: Error, CustomStringConvertible {
        case noCertificate(directory: String, failed: [String: String])
        public var description: String {
            switch self {
            case .noCertificate(let directory, let failed):
                let reasons = failed.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                return "no usable certificate in \(directory)" + (reasons.isEmpty ? "" : " (" + reasons.joined(separator: "; ") + ")")
            }
        }
    }

    public let directory: String
    let logger: Logger
    let entries = NIOLockedValueBox<[Entry]>([])
    #if os(Linux)
    /// What the relay's handshakes choose from: set once the relay serves
    /// HTTPS (`relayCertificates()`), then made anew by every reload.
    private let relaySet = NIOLockedValueBox<RelayCertificates?>(nil)
    #endif

    public init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// Loads the directory anew. With no usable pair at all, keeps what was
    /// served before and throws.
    @discardableResult
    public func reload() throws -> Report {
        var loaded: [Entry] = []
        var failed: [String: String] = [:]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for file in files.sorted() where file.hasSuffix(".pem") {
            let name = String(file.dropLast(4))
            let pem = FileWrites.join(directory, file)
            let keyFile = FileWrites.join(directory, name + ".key")
            guard FileManager.default.fileExists(atPath: keyFile) else { continue }
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(pem)
                guard let leaf = chain.first else { throw CertificateProblem("no certificate in \(file)") }
                let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
                var entry = Entry(file: name, names: try Self.names(of: leaf), chain: chain, key: key)
                #if os(Linux)
                if servesRelay { entry.relay = try TLSContext(chain: pem, key: keyFile) }
                #endif
                loaded.append(entry)
            } catch {
                failed[name] = "\(error)"
                logger.error("certificate pair not loaded", metadata: ["pair": "\(name)", "error": "\(error)"])
            }
        }
        guard !loaded.isEmpty else { throw LoadError.noCertificate(directory: directory, failed: failed) }
        entries.withLockedValue { $0 = loaded }
        #if os(Linux)
        if servesRelay { relaySet.withLockedValue { $0 = RelayCertificates(entries: loaded) } }
        #endif
        let served = loaded.map(\.file)
        logger.info("certificates loaded", metadata: ["served": "\(served.joined(separator: ","))"])
        return Report(served: served, names: Dictionary(uniqueKeysWithValues: loaded.map { ($0.file, $0.names) }), failed: failed)
    }

    /// The DNS names of a certificate: its subject alternative names, else
    /// its common name; lower case.
    static func names(of certificate: NIOSSLCertificate) throws -> [String] {
        try CertificateNames.of(der: try certificate.toDERBytes())
    }

    /// The entry for a TLS server name (nil: none loaded).
    func select(serverName: String?) -> Entry? {
        entries.withLockedValue { Self.choose(from: $0, serverName: serverName) }
    }

    /// The entry of `entries` for a TLS server name: the certificate that
    /// names it, an exact name before a wildcard; else the file named after
    /// it; else the default.
    static func choose(from entries: [Entry], serverName: String?) -> Entry? {
        guard let first = entries.first else { return nil }
        let fallback = entries.first { $0.file == "default" } ?? first
        guard let raw = serverName, !raw.isEmpty else { return fallback }
        let name = raw.lowercased()
        if let exact = entries.first(where: { $0.names.contains(name) }) { return exact }
        if let dot = name.firstIndex(of: ".") {
            let wildcard = "*" + name[dot...]
            if let match = entries.first(where: { $0.names.contains(wildcard) }) { return match }
        }
        if let byFile = entries.first(where: { $0.file.lowercased() == name }) { return byFile }
        return fallback
    }

    #if os(Linux)
    /// Whether loads make the relay's contexts too.
    private var servesRelay: Bool { relayWanted.withLockedValue { $0 } }
    private let relayWanted = NIOLockedValueBox(false)

    /// The certificates the relay's handshakes use now (nil until
    /// `relayCertificates()` was called).
    var relayServed: RelayCertificates? { relaySet.withLockedValue { $0 } }

    /// The certificates for the relay's handshakes, as last loaded. The
    /// first call loads the directory again, with OpenSSL as well.
    func relayCertificates() throws -> RelayCertificates {
        if let set = relaySet.withLockedValue({ $0 }) { return set }
        relayWanted.withLockedValue { $0 = true }
        try reload()
        guard let set = relaySet.withLockedValue({ $0 }) else {
            throw LoadError.noCertificate(directory: directory, failed: [:])
        }
        return set
    }
    #endif

    /// A server context that picks the certificate per handshake.
    public func makeServerContext() throws -> NIOSSLContext {
        guard let initial = select(serverName: nil) else {
            throw LoadError.noCertificate(directory: directory, failed: [:])
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: initial.chain.map { .certificate($0) }, privateKey: .privateKey(initial.key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.applicationProtocols = ["http/1.1"]
        configuration.sslContextCallback = { [self] values, promise in
            guard let entry = self.select(serverName: values.serverHostname) else {
                promise.succeed(.noChanges)
                return
            }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = entry.chain.map { .certificate($0) }
            override.privateKey = .privateKey(entry.key)
            promise.succeed(override)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

struct CertificateProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
