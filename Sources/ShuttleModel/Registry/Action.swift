/// What the model asks its driver to do. The driver carries each one out
/// and reports back with events; it decides nothing on its own.
public enum Action: Equatable, Sendable {
    /// Bind a listening socket; answer with `.listenerBound` or `.listenerFailed`.
    /// It takes no clients until its update is committed (the model refuses them).
    case bindListener(Listener)
    /// Close a listening socket. Connections it accepted live on.
    case closeListener(ListenerID)
    /// Start checking a backend every `interval` (replaces a running check
    /// of the same backend id, which the model never asks for without
    /// stopping it first).
    case startHealthCheck(HealthCheck)
    /// Stop checking a backend; results still in flight are ignored.
    case stopHealthCheck(BackendID)
    /// A backend left the config (removed, or replaced under a new id):
    /// close the idle connections kept for it. Those in use finish.
    case retireBackend(BackendID)
    /// Write the state file with this config (it changed).
    case persist(Config)
    /// Answer an admin request.
    case reply(RequestID, AdminReply)
    /// Connect a client to this backend; answer with `.backendConnected`
    /// or `.backendConnectFailed`.
    case connectBackend(ConnectionID, BackendTarget)
    /// Close a client: no backend could take it.
    case closeClient(ConnectionID, CloseReason)
    /// Answer an HTTP request without a backend.
    case answerRequest(ConnectionID, HTTPAnswer)
    /// A backend's health flipped (for the log and metrics).
    case backendHealthChanged(BackendID, service: String, backend: String, isUp: Bool)
}

/// Where a new client connection goes: the answer to `.clientConnected`,
/// as `Registry.place` gives it without an array.
public enum Placement: Equatable, Sendable {
    /// Connect the client to this backend: `.connectBackend`.
    case connect(BackendTarget)
    /// No backend can take the client: `.closeClient`.
    case close(CloseReason)

    /// The action it stands for.
    public func action(for connection: ConnectionID) -> Action {
        switch self {
        case .connect(let target): return .connectBackend(connection, target)
        case .close(let reason): return .closeClient(connection, reason)
        }
    }
}

/// A listening socket for a service.
public struct Listener: Equatable, Hashable, Sendable {
    public var id: ListenerID
    public var service: String
    public var address: String
    public var network: Network
}

/// A health check: a TCP connect to `address` every `interval` ms, given
/// up after `timeout` ms.
public struct HealthCheck: Equatable, Hashable, Sendable {
    public var backend: BackendID
    public var service: String
    public var name: String
    public var address: String
    public var interval: Int
    public var timeout: Int
}

/// Where and how to connect a client.
public struct BackendTarget: Equatable, Hashable, Sendable {
    public var id: BackendID
    public var service: String
    public var name: String
    public var address: String
    public var network: Network
    /// Milliseconds; 0 means none.
    public var connectTimeout: Int
    /// Client and backend inactivity timeouts in milliseconds; 0 means none.
    public var clientTimeout: Int
    public var serverTimeout: Int
}

/// Why a client was closed without a backend.
public enum CloseReason: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The listener is not (or no longer) a committed service's.
    case noService
    /// The service has no backend up.
    case noBackend(service: String)
    /// Every backend up was tried and none connected.
    case allBackendsFailed(service: String, lastError: String)

    public var description: String {
        switch self {
        case .noService: return "no service on this listener"
        case .noBackend(let s): return "service \(s) has no backend up"
        case .allBackendsFailed(let s, let e): return "no backend of service \(s) connected (last error: \(e))"
        }
    }
}

/// The answer to an admin request.
public enum AdminReply: Equatable, Sendable {
    /// Applied (or nothing to change); the running config now.
    case applied(Config)
    /// Invalid: nothing changed. Every problem found.
    case rejected([ConfigProblem])
    /// The named service or backend does not exist.
    case notFound(String)
    /// A listener of the update could not be bound: nothing changed.
    case bindFailed(service: String, address: String, network: Network, reason: String)
}
