import Foundation
import MgpuClient

/// An error the CLI reports as one line (`mgpu: ...`) with an exit code.
public struct CLIError: Error, CustomStringConvertible {
    public let message: String
    public let exitCode: Int32
    public init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }
    public var description: String { message }

    /// Exit with `code` and print nothing (a foreground job's own exit code).
    static func exit(_ code: Int32) -> CLIError { CLIError("", exitCode: code) }

    /// Maps client failures to what the user should read and do.
    static func from(_ error: any Error, client: ClientOptions) -> CLIError {
        switch error {
        case let error as CLIError: return error
        case let error as TransportError:
            if case .timedOut = error { return CLIError("\(error)", exitCode: 2) }
            if "\(error)".contains("TLS") { return CLIError("\(error)", exitCode: 2) }
            if case .closed = error, !client.tls.enabled {
                return CLIError("\(error); if it serves HTTPS, give its certificate with --ca-cert or MGPU_CA_CERT (or --tls)", exitCode: 2)
            }
            return CLIError("\(error). Start one with `mgpu up` (or `mgpu master`), or point --host/--port or MGPU_MASTER_HOST/MGPU_MASTER_PORT at it.", exitCode: 2)
        case let error as APIError where error.status == 401: return CLIError("not allowed: \(error.message)", exitCode: 1)
        case let error as APIError: return CLIError(error.message, exitCode: 1)
        default: return CLIError("\(error)", exitCode: 1)
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data(("mgpu: " + text + "\n").utf8))
}

/// Writes a line to stdout at once (stdout may be a pipe, where print() is fully buffered).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
