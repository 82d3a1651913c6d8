# myia.genai_stack.iis_reverse_proxy: the certificate thumbprint bound to each site's HTTPS
# binding ('' when the site or binding does not exist yet). Reads only; runs in check mode too.
[CmdletBinding(SupportsShouldProcess)]
param (
    [Parameter(Mandatory)][object[]]$Rules,
    [Parameter(Mandatory)][AllowEmptyString()][string]$SitePrefix,
    [Parameter(Mandatory)][int]$Port
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
Import-Module WebAdministration

$bound = @{}
foreach ($rule in $Rules) {
    $site = $SitePrefix + $rule.id
    $found = $null
    if (Get-Website -Name $site) {
        $found = Get-WebBinding -Name $site -Protocol https -Port $Port -HostHeader $rule.hostname
    }
    $bound[$rule.hostname] = if ($found) { "$($found.certificateHash)".ToUpperInvariant() } else { '' }
}
$Ansible.Result = $bound
