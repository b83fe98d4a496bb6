// The verbs vocabulary (SGE, work requests, completions, the protocols) is part of this
// module's API: `import RDMASGE` brings it.
@_exported import Verbs
