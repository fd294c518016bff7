# itaudit Windows probe (Windows PowerShell 5.1 and PowerShell 7), read from stdin by a
# bootstrap given with -EncodedCommand over ONE ssh exec. Read-only. ASCII only.
# Prints "=== SECTION name ===" then one line of compact JSON per section, "=== END ===" last,
# so output cut short keeps every finished section. Dates are left as ConvertTo-Json
# writes them (5.1: "\/Date(ms)\/", 7: ISO 8601); the parser reads both.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try { [Console]::OutputEncoding = [Text.Encoding]::UTF8 } catch { }
function Out-Section([string]$Name, [scriptblock]$Body) {
  "=== SECTION $Name ==="
  try { $v = & $Body; if ($null -eq $v) { '{"_empty":true}' } else { ConvertTo-Json -InputObject $v -Compress -Depth 4 } }
  catch { ConvertTo-Json -InputObject @{ _error = ($_.Exception.Message -replace '\s+', ' ') } -Compress }
}
function Reg([string]$Path, [string]$Name) { try { (Get-ItemProperty -Path $Path -Name $Name -ErrorAction Stop).$Name } catch { $null } }
"=== ITAUDIT windows-probe 1 ==="
Out-Section 'meta' { @{ ps = $PSVersionTable.PSVersion.ToString(); edition = "$($PSVersionTable.PSEdition)"; date = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ'); culture = (Get-Culture).Name; admin = ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator) } }
Out-Section 'os' { Get-CimInstance Win32_OperatingSystem | Select-Object Caption, Version, BuildNumber, OSArchitecture, InstallDate, LastBootUpTime, CSName, ProductType, OperatingSystemSKU, OSLanguage, TotalVisibleMemorySize }
Out-Section 'cv' { Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' | Select-Object ProductName, EditionID, DisplayVersion, ReleaseId, CurrentBuild, UBR, InstallationType, InstallDate }
Out-Section 'cs' { Get-CimInstance Win32_ComputerSystem | Select-Object Manufacturer, Model, Domain, PartOfDomain, PCSystemType, TotalPhysicalMemory, SystemFamily }
Out-Section 'enclosure' { Get-CimInstance Win32_SystemEnclosure | Select-Object ChassisTypes, SerialNumber }
Out-Section 'bios' { Get-CimInstance Win32_BIOS | Select-Object Manufacturer, SMBIOSBIOSVersion, ReleaseDate, SerialNumber }
Out-Section 'cpu' { Get-CimInstance Win32_Processor | Select-Object Name, NumberOfCores, NumberOfLogicalProcessors }
Out-Section 'disks' { Get-CimInstance Win32_DiskDrive | Select-Object Model, Size, MediaType, InterfaceType }
Out-Section 'tpm' { Get-CimInstance -Namespace 'root\cimv2\Security\MicrosoftTpm' -ClassName Win32_Tpm | Select-Object IsActivated_InitialValue, IsEnabled_InitialValue, SpecVersion, ManufacturerVersion }
Out-Section 'secureboot' { @{ enabled = (Confirm-SecureBootUEFI) } }
Out-Section 'hotfixes' { Get-HotFix | Select-Object HotFixID, Description, InstalledOn }
Out-Section 'wu' {
  $s = New-Object -ComObject Microsoft.Update.Session
  $h = $s.CreateUpdateSearcher()
  $n = $h.GetTotalHistoryCount()
  $last = $null; if ($n -gt 0) { $last = ($h.QueryHistory(0, [Math]::Min($n, 50)) | Where-Object { $_.ResultCode -eq 2 } | Sort-Object Date -Descending | Select-Object -First 1).Date }
  $h.Online = $false
  $p = $h.Search("IsInstalled=0 and IsHidden=0 and Type='Software'").Updates
  $sec = @($p | Where-Object { $_.MsrcSeverity -or ($_.Categories | Where-Object { $_.CategoryID -eq '0fa1201d-4330-4fa8-8ae9-b877473b6441' }) }).Count
  @{ last_success = $last; pending = $p.Count; security = $sec }
}
Out-Section 'reboot' { @{ wu = (Test-Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired'); cbs = (Test-Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending') } }
Out-Section 'au' { @{ NoAutoUpdate = (Reg 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU' 'NoAutoUpdate'); AUOptions = (Reg 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU' 'AUOptions'); wuauserv = "$((Get-Service wuauserv).StartType)" } }
Out-Section 'defender' { Get-MpComputerStatus | Select-Object AMServiceEnabled, AntivirusEnabled, RealTimeProtectionEnabled, AntivirusSignatureLastUpdated, AntivirusSignatureAge, AMProductVersion }
Out-Section 'av' { Get-CimInstance -Namespace 'root\SecurityCenter2' -ClassName AntiVirusProduct | Select-Object displayName, productState }
Out-Section 'firewall' { Get-NetFirewallProfile | ForEach-Object { @{ Name = "$($_.Name)"; Enabled = "$($_.Enabled)" } } }
Out-Section 'bitlocker' { Get-CimInstance -Namespace 'root\cimv2\Security\MicrosoftVolumeEncryption' -ClassName Win32_EncryptableVolume | Select-Object DriveLetter, ProtectionStatus, VolumeType }
Out-Section 'smb' { @{ smb1 = (Get-SmbServerConfiguration).EnableSMB1Protocol; reg = (Reg 'HKLM:\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters' 'SMB1') } }
Out-Section 'rdp' { @{ fDenyTSConnections = (Reg 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server' 'fDenyTSConnections'); UserAuthentication = (Reg 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp' 'UserAuthentication') } }
Out-Section 'admins' {
  try { Get-LocalGroupMember -SID 'S-1-5-32-544' | ForEach-Object { "$($_.Name)" } }
  catch { $g = (New-Object Security.Principal.SecurityIdentifier('S-1-5-32-544')).Translate([Security.Principal.NTAccount]).Value.Split('\')[-1]
    ([ADSI]"WinNT://./$g,group").psbase.Invoke('Members') | ForEach-Object { $_.GetType().InvokeMember('Name', 'GetProperty', $null, $_, $null) } }
}
Out-Section 'listening' { Get-NetTCPConnection -State Listen | ForEach-Object { "tcp/$($_.LocalAddress)/$($_.LocalPort)" }; Get-NetUDPEndpoint | ForEach-Object { "udp/$($_.LocalAddress)/$($_.LocalPort)" } }
"=== END ==="
