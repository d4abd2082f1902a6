import ArgumentParser
import Foundation
import MgpuClient

extension Mgpu {
    struct Dashboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dashboard",
            abstract: "Print a link that signs you in to the web dashboard, once; open it in a browser when there is a display.",
            discussion: """
                The link holds a one-time code, not your token: it works once, within
                60 seconds. The page keeps your token in the browser (for that address
                only) and takes the code out of the address bar.
                  mgpu dashboard            print the link; open it with xdg-open when
                                            $DISPLAY or $WAYLAND_DISPLAY is set
                  mgpu dashboard --no-open  print it only (to paste elsewhere)
                Or open the master's address and paste your token
                (~/.config/mgpu/token, or from `mgpu admin user add NAME`).
                """)

        @OptionGroup var client: ClientOptions

        @Flag(help: "Print the link only; do not start a browser.")
        var noOpen = false

        func run() async throws {
            let api = try client.client
            let code = try await client.call { try await $0.signInCode() }
            let link = "\(api.http.baseURL)/?code=\(code.code)"
            say("Open within \(Int(code.expiresIn)) s to sign in (the link works once):")
            say(link)
            let env = ProcessInfo.processInfo.environment
            guard !noOpen, (env["DISPLAY"] ?? "") != "" || (env["WAYLAND_DISPLAY"] ?? "") != "",
                  let opener = Self.which("xdg-open") else { return }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: opener)
            process.arguments = [link]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch { say("could not start xdg-open: \(error.localizedDescription); open the link above yourself") }
        }

        static func which(_ name: String) -> String? {
            (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
                .map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        }
    }
}
