import ArgumentParser
import Foundation
import MgpuMaster
import MgpuClient
import MgpuCore

/// Where clients find the master: --host/--port, then MGPU_MASTER_HOST/MGPU_MASTER_PORT, then localhost:8080.
public struct ClientOptions: ParsableArguments {
    @Option(help: "The master's host (default: $MGPU_MASTER_HOST, else localhost).")
    var host: String?

    @Option(help: "The master's port (default: $MGPU_MASTER_PORT, else 8080).")
    var port: Int?

    @OptionGroup var tls: TLSClientOptions

    public init() {}

    var resolvedHost: String {
        host ?? processEnvironment["MGPU_MASTER_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
    }

    var resolvedPort: Int {
        port ?? processEnvironment["MGPU_MASTER_PORT"].flatMap(Int.init) ?? 8080
    }

    public func validate() throws {
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be 1-65535, got \(port)") }
        if port == nil, let text = processEnvironment["MGPU_MASTER_PORT"], !text.isEmpty,
           Int(text).map({ (1...65535).contains($0) }) != true {
            throw ValidationError("MGPU_MASTER_PORT must be a port number 1-65535, got \(text.debugDescription)")
        }
    }

    var client: MasterClient {
        get throws { MasterClient(host: resolvedHost, port: resolvedPort, token: resolvedToken, tls: try tls.make(), oneShot: true) }
    }

    /// The user's token: $MGPU_TOKEN, else ~/.config/mgpu/token, else the one a master on this machine left for this
    /// Unix user in its state dir ($MGPU_STATE_DIR or the default), so `mgpu up` needs no setup.
    var resolvedToken: String? { knownTokens.first }

    /// Every token this user has at hand, in the order above: none of them is forwarded to a job.
    var knownTokens: [String] { processTokens }

    /// Runs a client call, turning failures into one clear line.
    func call<T>(_ body: (MasterClient) async throws -> T) async throws -> T {
        do {
            return try await body(try client)
        } catch {
            throw CLIError.from(error, client: self)
        }
    }
}

/// HTTPS to a master started with --tls-cert/--tls-key (clients and agents).
struct TLSClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp("CA certificate (PEM) that signed the master's certificate, or the master's self-signed certificate itself; implies HTTPS (default: $MGPU_CA_CERT).", valueName: "pem"))
    var caCert: String?

    @Flag(help: "Talk HTTPS to the master, trusting the system's CA roots (default: on when $MGPU_TLS is 1).")
    var tls = false

    init() {}

    var resolvedCACert: String? {
        caCert ?? processEnvironment["MGPU_CA_CERT"].flatMap { $0.isEmpty ? nil : $0 }
    }

    var enabled: Bool { tls || resolvedCACert != nil || processEnvironment["MGPU_TLS"] == "1" }

    /// The TLS setting to dial the master with, or nil for plain HTTP.
    func make() throws -> ClientTLS? {
        guard enabled else { return nil }
        do { return try ClientTLS(caCertificate: resolvedCACert) } catch {
            throw CLIError(error.description, exitCode: 2)
        }
    }

    /// Run by ArgumentParser for every command that holds these options (an @OptionGroup validates itself).
    func validate() throws {
        if enabled {
            do { _ = try ClientTLS(caCertificate: resolvedCACert) } catch { throw ValidationError(error.description) }
        }
    }
}

struct VerboseOption: ParsableArguments {
    @Flag(name: .long, help: "Log debug detail.")
    var verbose = false
}

/// Job ids are 8 hex digits; anything else is refused before it reaches the master.
func validateJobIDs(_ ids: [String]) throws {
    for id in ids where JobID(id) == nil {
        throw ValidationError("job id must be 8 hex digits (e.g. F68FAFEC; an array task F68FAFEC_7), got \(id.debugDescription)")
    }
}

/// The tokens of `ClientOptions.knownTokens`, looked up once: a command that makes several requests (srun: four)
/// read the environment, the passwd entry and two files again for each.
let processTokens: [String] = {
    let env = processEnvironment
    var tokens: [String] = []
    if let token = env["MGPU_TOKEN"], !token.isEmpty { tokens.append(token) }
    let home = env["HOME"] ?? NSHomeDirectory()
    let stateDir = env["MGPU_STATE_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? MasterConfig.defaultStateDir
    for path in ["\(home)/.config/mgpu/token", "\(stateDir)/tokens/\(currentUser())"] {
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { tokens.append(token) }
        }
    }
    return tokens
}()

/// This process's environment, read once: Foundation builds the whole dictionary again on every read of
/// `ProcessInfo.processInfo.environment`, which a client command did half a dozen times on its way to one request.
let processEnvironment: [String: String] = ProcessInfo.processInfo.environment
