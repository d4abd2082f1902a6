import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

extension EndToEndTests {
    /// What an admin installs: scripts/install and scripts/package run for real (into a folder of the test's, with the
    /// binary under test), the units they write pass `systemd-analyze verify`, completions load in bash, the example
    /// config reads, and the master tells systemd it is ready (Type=notify).
    @Suite struct InstallTests {
        static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

        func run(_ argv: [String], timeout: Double = 120) throws -> (status: Int32, output: String) {
            try Spawn.capture(["/bin/sh", "-c", "\"$@\" 2>&1", "sh"] + argv, timeout: timeout)
        }

        @Test func scriptsInstallWritesUnitsThatVerifyCompletionsAndAConfig() async throws {
            let cluster = try TestCluster()
            defer { cluster.stop() }
            let root = cluster.dir + "/root"
            let args = ["--binary", mgpuBinary, "--prefix", root + "/usr", "--sysconfdir", root + "/etc", "--unitdir", root + "/units"]
            let installed = try run([Self.repo + "/scripts/install"] + args)
            #expect(installed.status == 0, "\(installed.output)")
            #expect(installed.output.contains("installed mgpu \(mgpuVersion) (commit "), "\(installed.output)")
            let bin = root + "/usr/bin/mgpu"
            #expect(try run([bin, "--version"]).output.hasPrefix("mgpu \(mgpuVersion)"))
            #expect(FileManager.default.isExecutableFile(atPath: root + "/usr/bin/mgpu-supervise"), "the per-job supervisor beside mgpu")
            // The units: the installed binary's path, hardening on the master, the node's jobs outliving it.
            let master = try #require(cluster.read("root/units/mgpu-master.service"))
            let node = try #require(cluster.read("root/units/mgpu-node.service"))
            #expect(master.contains("ExecStart=\(bin) master") && node.contains("ExecStart=\(bin) node"))
            for line in ["ProtectSystem=strict", "StateDirectory=mgpu", "Restart=on-failure", "Type=notify", "DynamicUser=yes"] {
                #expect(master.contains("\n\(line)\n"), "master unit: \(line)")
            }
            for line in ["KillMode=process", "Restart=on-failure", "StateDirectory=mgpu-node"] { #expect(node.contains("\n\(line)\n"), "node unit: \(line)") }
            #expect(!node.contains("\nUser="), "the node agent runs as root: it starts jobs as their owners")
            if let analyze = which("systemd-analyze") {
                let verified = try run([analyze, "verify", root + "/units/mgpu-master.service", root + "/units/mgpu-node.service"])
                #expect(verified.status == 0 && verified.output.isEmpty, "systemd-analyze verify: \(verified.output)")
            } else {
                #expect(!requireTools, "systemd-analyze is missing")
            }
            // Completions for three shells; bash's loads and completes subcommands.
            let bash = root + "/usr/share/bash-completion/completions/mgpu"
            #expect(cluster.read("root/usr/share/zsh/site-functions/_mgpu")?.contains("#compdef mgpu") == true)
            #expect(cluster.read("root/usr/share/fish/vendor_completions.d/mgpu.fish")?.contains("complete -c 'mgpu'") == true)
            let words = try run(["/bin/bash", "-c", "source \"$1\"; COMP_WORDS=(mgpu sub); COMP_CWORD=1; COMP_LINE='mgpu sub'; COMP_POINT=8; _mgpu; echo \"${COMPREPLY[*]}\"",
                                 "bash", bash])
            #expect(words.output.contains("submit"), "bash completion of `mgpu sub`: \(words.output)")
            // The example config reads, and is not overwritten by a second install.
            let config = root + "/etc/mgpu/mgpu.toml"
            let shown = try await cluster.mgpu(["config", "show", "master", "--config", config])
            #expect(shown.status == 0, "\(shown.stderr)")
            try "[master]\nport = 9999\n".write(toFile: config, atomically: true, encoding: .utf8)
            #expect(try run([Self.repo + "/scripts/install"] + args).status == 0)
            #expect(cluster.read("root/etc/mgpu/mgpu.toml") == "[master]\nport = 9999\n", "an admin's config is kept")
            // The release tarball, from the same binary: unpacked, its own install script installs it.
            let packaged = try run(["/usr/bin/env", "XZ_OPT=-0", Self.repo + "/scripts/package", "--binary", mgpuBinary, "--out", cluster.dir + "/out"], timeout: 300)
            #expect(packaged.status == 0, "\(packaged.output)")
            let tarball = try #require(packaged.output.split(separator: "\n").last.map(String.init))
            #expect(tarball.hasSuffix("mgpu-\(mgpuVersion)-linux-\(machine()).tar.xz"), "\(tarball)")
            let listing = try run(["/bin/tar", "-tJf", tarball]).output
            for file in ["mgpu", "mgpu-supervise", "install", "README.md", "mgpu.toml", "VERSION", "systemd/mgpu-master.service.in", "systemd/mgpu-node.service.in",
                         "completions/mgpu.bash", "completions/_mgpu", "completions/mgpu.fish"] {
                #expect(listing.contains("mgpu-\(mgpuVersion)-linux-\(machine())/\(file)\n"), "\(file) in the tarball")
            }
            _ = try run(["/bin/tar", "-xJf", tarball, "-C", cluster.dir])
            let unpacked = cluster.dir + "/mgpu-\(mgpuVersion)-linux-\(machine())"
            let second = cluster.dir + "/root2"
            let fromTarball = try run([unpacked + "/install", "--prefix", second + "/usr", "--sysconfdir", second + "/etc", "--unitdir", second + "/units"])
            #expect(fromTarball.status == 0 && FileManager.default.isExecutableFile(atPath: second + "/usr/bin/mgpu"), "\(fromTarball.output)")
            #expect(cluster.read("root2/units/mgpu-node.service")?.contains("ExecStart=\(second)/usr/bin/mgpu node") == true)
        }

        /// Under `Type=notify` systemd waits for READY=1 on $NOTIFY_SOCKET: the master sends it once it listens.
        @Test func theMasterTellsSystemdItIsReady() async throws {
            let cluster = try TestCluster()
            defer { cluster.stop() }
            let path = cluster.dir + "/notify"
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(bound == 0)
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            try await cluster.startMaster(env: ["NOTIFY_SOCKET": path])
            var buffer = [UInt8](repeating: 0, count: 512)
            let got = recv(fd, &buffer, buffer.count, 0)
            let message = got > 0 ? String(decoding: buffer[0..<got], as: UTF8.self) : ""
            #expect(message.hasPrefix("READY=1\n") && message.contains("STATUS=listening on port \(cluster.port)"), "\(message)")
        }
    }
}

func machine() -> String {
    var name = utsname()
    uname(&name)
    return withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

extension EndToEndTests.InstallTests {
    /// [client] of the config file tells every client command where the master is; the command line and the
    /// environment win over it; a key it does not know is one line and exit 2.
    @Test func theClientSectionFindsTheMaster() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let config = cluster.dir + "/mgpu.toml"
        try "[client]\nhost = \"127.0.0.1\"\nport = \(cluster.port)\n".write(toFile: config, atomically: true, encoding: .utf8)
        let fromFile = ["MGPU_CONFIG": config, "MGPU_MASTER_HOST": "", "MGPU_MASTER_PORT": ""]
        let queue = try await cluster.mgpu(["queue"], env: fromFile)
        #expect(queue.status == 0 && queue.stdout.contains("No jobs") || queue.stdout.contains("JOBID"), "\(queue)")
        let submitted = try await cluster.mgpu(["submit", "--gpus", "0", "--", "echo", "--port", "7"], env: fromFile)
        #expect(submitted.status == 0, "options go after the command's name, not into the job's command: \(submitted)")
        let id = try #require(JobID(String(submitted.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(try await cluster.waitForState(id, [.completed]).command == "echo --port 7")
        let nested = try await cluster.mgpu(["admin", "user", "list"], env: fromFile)
        #expect(nested.status == 0 && nested.stdout.contains(unixUser), "\(nested)")
        // The environment and the command line win over the file.
        let env = try await cluster.mgpu(["queue"], env: fromFile.merging(["MGPU_MASTER_PORT": "1"]) { $1 })
        #expect(env.status != 0 && env.stderr.contains(":1"), "\(env)")
        let flag = try await cluster.mgpu(["queue", "--port", "1"], env: fromFile)
        #expect(flag.status != 0 && flag.stderr.contains(":1"), "\(flag)")
        try "[client]\nhots = \"x\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try await cluster.mgpu(["queue"], env: fromFile)
        #expect(bad.status == 2 && bad.stderr.contains("mgpu.toml:2: unknown key \"hots\"") && bad.stderr.contains("did you mean host?"), "\(bad)")
    }
}

extension EndToEndTests.InstallTests {
    /// A job's supervisor is the small `mgpu-supervise` beside mgpu; an mgpu installed without it supervises its jobs
    /// itself (`mgpu _supervise`).
    @Test func jobsRunUnderTheSmallSupervisorOrElseUnderMgpu() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        func supervisorOf(_ id: JobID) async throws -> String {
            try await cluster.waitForState(id, [.completed])
            return try await cluster.mgpu(["logs", id.rawValue]).stdout
        }
        let beside = (URL(fileURLWithPath: mgpuBinary).resolvingSymlinksInPath().path as NSString).deletingLastPathComponent + "/mgpu-supervise"
        let first = try await cluster.submit(["--gpus", "0", "tr '\\0' ' ' < /proc/$PPID/cmdline"])
        #expect(try await supervisorOf(first).hasPrefix(beside + " _supervise "), "the job's parent is mgpu-supervise")
        // mgpu alone in a folder (a hard link: /proc/self/exe names the folder it was started from).
        let alone = cluster.dir + "/alone"
        try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: true)
        if link(mgpuBinary, alone + "/mgpu") != 0 { try FileManager.default.copyItem(atPath: mgpuBinary, toPath: alone + "/mgpu") }
        try cluster.startAgent("node002", gpus: 1, binary: alone + "/mgpu")
        try await cluster.waitForNodes(["node002"])
        let second = try await cluster.submit(["--gpus", "0", "--nodelist", "node002", "tr '\\0' ' ' < /proc/$PPID/cmdline"])
        #expect(try await supervisorOf(second).hasPrefix(alone + "/mgpu _supervise "))
    }

    /// A supervisor of mgpu 0.2.0 left beside a newer mgpu (installed without it): it knows no `--features` and no
    /// `--attr-records` and refuses both; the agent asks it once, passes no flag it does not know, and reads the files
    /// it writes. Jobs run and end with their own exit status.
    @Test func anOlderSupervisorBesideMgpuStillRunsJobs() async throws {
        let cluster = try await TestCluster.start(agents: [:])
        defer { cluster.stop() }
        let folder = cluster.dir + "/old-supervisor"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if link(mgpuBinary, folder + "/mgpu") != 0 { try FileManager.default.copyItem(atPath: mgpuBinary, toPath: folder + "/mgpu") }
        let real = (URL(fileURLWithPath: mgpuBinary).resolvingSymlinksInPath().path as NSString).deletingLastPathComponent + "/mgpu-supervise"
        // 0.2.0's arguments only: anything else gets its usage and status 2.
        let script = """
            #!/bin/sh
            for a in "$@"; do case "$a" in --features|--attr-records) echo "usage: mgpu _supervise JOBDIR GRACE_SECONDS" >&2; exit 2;; esac; done
            exec \(real) "$@"
            """
        try script.write(toFile: folder + "/mgpu-supervise", atomically: true, encoding: .utf8)
        chmod(folder + "/mgpu-supervise", 0o755)
        try cluster.startAgent("node001", gpus: 1, binary: folder + "/mgpu")
        try await cluster.waitForNodes(["node001"])
        let id = try await cluster.submit(["--gpus", "0", "echo from the old supervisor; exit 5"])
        let done = try await cluster.waitForState(id, [.failed, .completed])
        #expect(done.exit?.code == 5, "\(String(describing: done.exit)) \(done.reason ?? "")")
        #expect(try await cluster.mgpu(["logs", id.rawValue]).stdout == "from the old supervisor\n")
    }
}
