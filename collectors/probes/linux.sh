# itaudit Linux/POSIX probe, sent on stdin to `sh -s` over ONE ssh exec.
# Prints delimited sections "=== SECTION name ===" and ends with "=== END ===".
# Read-only: it never writes on the target. `sudo -n` (never a prompt) only when
# the collector prepends ITAUDIT_SUDO=1 because the credential allows it.
LC_ALL=C; LANG=C; export LC_ALL LANG
PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"; export PATH
has() { command -v "$1" >/dev/null 2>&1; }
sec() { echo "=== SECTION $1 ==="; }
S=""
if [ "${ITAUDIT_SUDO:-0}" = 1 ] && [ "$(id -u)" != 0 ] && has sudo && sudo -n true >/dev/null 2>&1; then S="sudo -n"; fi
T=""; if has timeout && timeout 1 true >/dev/null 2>&1; then T="timeout 40"; fi

echo "=== ITAUDIT linux-probe 1 ==="
sec meta
echo "uid=$(id -u)"; echo "sudo=${S:+1}"; echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
sec hostname
hostname 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null
sec os-release
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
sec release-files
for f in /etc/lsb-release /etc/redhat-release /etc/centos-release /etc/system-release /etc/debian_version /etc/SuSE-release /etc/alpine-release; do
  [ -r "$f" ] && { echo "--- $f"; head -n 5 "$f"; }
done
sec uname
echo "kernel_name=$(uname -s)"; echo "kernel=$(uname -r)"; echo "arch=$(uname -m)"; echo "kernel_version=$(uname -v)"
sec virt
has systemd-detect-virt && echo "detect_virt=$(systemd-detect-virt 2>/dev/null)"
[ -f /.dockerenv ] && echo "dockerenv=1"
[ -r /run/systemd/container ] && echo "container=$(cat /run/systemd/container)"
grep -q '^flags.* hypervisor' /proc/cpuinfo 2>/dev/null && echo "hypervisor_flag=1"
[ -r /proc/1/cgroup ] && grep -qE 'docker|lxc|kubepods|containerd' /proc/1/cgroup 2>/dev/null && echo "cgroup_container=1"
sec uptime
cat /proc/uptime 2>/dev/null
sec dmi
d=/sys/class/dmi/id
if [ -d $d ]; then
  for k in sys_vendor product_name product_version product_serial product_uuid board_vendor board_name chassis_type chassis_vendor bios_vendor bios_version bios_date; do
    if [ -r $d/$k ] && v=$(cat $d/$k 2>/dev/null); then echo "$k=$v"
    elif [ -n "$S" ] && v=$($S cat $d/$k 2>/dev/null); then echo "$k=$v"
    elif [ -e $d/$k ]; then echo "$k=!unreadable"; else echo "$k=!missing"; fi
  done
else echo "!no-dmi"; fi
sec cpu
grep -m1 -E '^(model name|Processor|cpu model)' /proc/cpuinfo 2>/dev/null
echo "processors=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)"
sec memory
grep -E '^(MemTotal|SwapTotal):' /proc/meminfo 2>/dev/null
sec disks
if has lsblk; then lsblk -b -P -o NAME,KNAME,TYPE,SIZE,MODEL,FSTYPE,MOUNTPOINT 2>/dev/null; else echo "!no-lsblk"; cat /proc/partitions 2>/dev/null; fi
[ -r /etc/crypttab ] && echo "crypttab_entries=$(grep -cvE '^[[:space:]]*(#|$)' /etc/crypttab)"
sec packages
if has dpkg-query; then echo "pm=dpkg"; dpkg-query -W -f='${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n' 2>/dev/null
elif has rpm; then echo "pm=rpm"; rpm -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\tii\n' 2>/dev/null
elif has apk; then echo "pm=apk"; apk info -v 2>/dev/null
else echo "pm=none"; fi
sec updates
if has apt-get; then echo "tool=apt"; $T apt-get -s -o Debug::NoLocking=true upgrade 2>&1 | grep -E '^(Inst |E: |W: )|upgraded,'; echo "rc=$?"
elif has dnf; then echo "tool=dnf"; $T dnf -q -C --setopt=cachedir=/var/cache/dnf check-update 2>&1; echo "rc=$?"
  echo "--- security"; $T dnf -q -C --setopt=cachedir=/var/cache/dnf updateinfo list --security 2>&1; echo "rc=$?"
elif has yum; then echo "tool=yum"; $T yum -q -C check-update 2>&1; echo "rc=$?"
  echo "--- security"; $T yum -q -C updateinfo list security 2>&1; echo "rc=$?"
elif has zypper; then echo "tool=zypper"; $T zypper -n --no-refresh -q list-updates 2>&1; echo "rc=$?"
  echo "--- security"; $T zypper -n --no-refresh -q list-patches --category security 2>&1; echo "rc=$?"
else echo "tool=none"; fi
sec last-change
[ -r /var/log/dpkg.log ] && echo "dpkg_log_last=$(grep -E ' (install|upgrade) ' /var/log/dpkg.log | tail -n 1 | cut -c1-19)"
[ -r /var/log/apt/history.log ] && echo "apt_history_last=$(grep '^Start-Date:' /var/log/apt/history.log | tail -n 1 | cut -d' ' -f2)"
[ -e /var/lib/dpkg/status ] && echo "dpkg_status_mtime=$(date -r /var/lib/dpkg/status +%s 2>/dev/null)"
has rpm && echo "rpm_last_install=$(rpm -qa --qf '%{INSTALLTIME}\n' 2>/dev/null | sort -n | tail -n 1)"
sec reboot
[ -f /var/run/reboot-required ] && echo "reboot_required_file=1"
[ -r /var/run/reboot-required.pkgs ] && echo "reboot_pkgs=$(tr '\n' ' ' < /var/run/reboot-required.pkgs)"
if has needs-restarting; then $T needs-restarting -r >/dev/null 2>&1; echo "needs_restarting_rc=$?"; fi
echo "running_kernel=$(uname -r)"
echo "boot_kernels=$(ls /boot 2>/dev/null | grep -E '^vmlinu[xz]-' | tr '\n' ' ')"
sec autoupdate
if has apt-config; then apt-config dump 2>/dev/null | grep -E '^APT::Periodic::(Unattended-Upgrade|Update-Package-Lists) '; fi
if has systemctl; then for u in unattended-upgrades.service apt-daily-upgrade.timer dnf-automatic.timer dnf-automatic-install.timer yum-cron.service; do
  s=$(systemctl is-enabled "$u" 2>/dev/null | head -n 1); echo "unit $u ${s:-missing}"; done; fi
[ -r /etc/dnf/automatic.conf ] && grep -E '^apply_updates' /etc/dnf/automatic.conf
[ -r /etc/yum/yum-cron.conf ] && grep -E '^apply_updates' /etc/yum/yum-cron.conf
sec sshd
if has sshd && o=$($S sshd -T 2>/dev/null) && [ -n "$o" ]; then echo "source=sshd-T"; echo "$o" | grep -iE '^(permitrootlogin|passwordauthentication|kbdinteractiveauthentication|challengeresponseauthentication|permitemptypasswords|pubkeyauthentication|ciphers|macs|kexalgorithms|port|protocol|x11forwarding) '
else echo "source=config"; for f in /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf; do
  if [ -r "$f" ]; then echo "--- $f"; grep -vE '^[[:space:]]*(#|$)' "$f"; elif [ -e "$f" ]; then echo "!unreadable $f"; fi; done; fi
sec listening
if has ss; then echo "tool=ss"; ss -tuln 2>/dev/null
elif has netstat; then echo "tool=netstat"; netstat -tuln 2>/dev/null
else echo "tool=proc"; for p in tcp tcp6 udp udp6; do echo "--- $p"; cat /proc/net/$p 2>/dev/null; done; fi
sec firewall
if has systemctl; then for u in firewalld ufw nftables netfilter-persistent iptables; do
  s=$(systemctl is-active "$u" 2>/dev/null | head -n 1); echo "unit $u ${s:-inactive}"; done; fi
[ -r /etc/ufw/ufw.conf ] && grep -E '^ENABLED=' /etc/ufw/ufw.conf
if [ "$(id -u)" = 0 ] || [ -n "$S" ]; then
  has nft && echo "nft_rules=$($S nft list ruleset 2>/dev/null | grep -cE '^[[:space:]]+(ip|tcp|udp|ct|iif|oif|meta|counter|jump|drop|accept|reject)')"
  has iptables && echo "iptables_rules=$($S iptables -S 2>/dev/null | grep -c '^-A')"
  has iptables && echo "iptables_policy=$($S iptables -S INPUT 2>/dev/null | head -n 1)"
else echo "!not-root"; fi
sec accounts
awk -F: '$3==0{print "uid0="$1}' /etc/passwd 2>/dev/null
if [ -r /etc/shadow ]; then awk -F: '$2==""{print "empty="$1}' /etc/shadow; echo "shadow=read"
elif [ -n "$S" ] && $S true 2>/dev/null; then $S awk -F: '$2==""{print "empty="$1}' /etc/shadow 2>/dev/null; echo "shadow=sudo"
else echo "shadow=unreadable"; fi
echo "=== END ==="
