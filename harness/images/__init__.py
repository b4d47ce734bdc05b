"""Images: bootstrap bases, the host-side wheelhouse, content-addressed builds, the Docker engine adapter
(the only code that imports ``docker``) and what every container gets."""
